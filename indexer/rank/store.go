package rank

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
)

// Levels of stored ranks.
const (
	LevelHost   = 'h'
	LevelDomain = 'd'
	LevelPage   = 'p' // named by the index's SURT of the page's URL
)

// Score maps PageRank values to 0-100 on a logarithmic scale:
// round(100 * ln(1 + N*pr) / ln(1 + N*max)), N the number of nodes, so the
// average node (N*pr = 1) scores ln 2 / ln(1 + N*max) of the top one.
func Score(pr []float64) []int32 {
	n, top := float64(len(pr)), 0.0
	for _, p := range pr {
		top = max(top, p)
	}
	out := make([]int32, len(pr))
	if top == 0 {
		return out
	}
	den := math.Log1p(n * top)
	for i, p := range pr {
		out[i] = int32(math.Round(100 * math.Log1p(n*p) / den))
	}
	return out
}

// Ranks are kept in generations, so that a new ranking, written in many
// batches (and in a cluster by many nodes), replaces the last one at once:
//
//	k 0x00                       -> generation (8 bytes) | ComputeRanksResponse
//	k 'g' generation level name  -> rank
//
// A reader reads the current generation once and then only its keys.
const (
	keyCurrent    = 0
	keyGeneration = 'g'
)

func currentKey() []byte { return []byte{store.PrefixRank, keyCurrent} }

func genPrefix(gen uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{store.PrefixRank, keyGeneration}, gen)
}

func rankKey(gen uint64, level byte, name string) []byte {
	return append(append(genPrefix(gen), level), name...)
}

func encodeRank(r *lgv1.Rank) []byte {
	val := binary.AppendUvarint(nil, uint64(r.GetScore()))
	val = binary.AppendUvarint(val, uint64(r.GetHarmonicPos()))
	val = binary.AppendUvarint(val, uint64(r.GetPagerankPos()))
	val = binary.BigEndian.AppendUint64(val, math.Float64bits(r.GetHarmonic()))
	return binary.BigEndian.AppendUint64(val, math.Float64bits(r.GetPagerank()))
}

func decodeRank(raw []byte) (*lgv1.Rank, error) {
	var f [3]uint64
	for i := range f {
		v, n := binary.Uvarint(raw)
		if n <= 0 {
			return nil, errMalformed
		}
		f[i], raw = v, raw[n:]
	}
	if len(raw) != 16 {
		return nil, errMalformed
	}
	return &lgv1.Rank{
		Score: int32(f[0]), HarmonicPos: int64(f[1]), PagerankPos: int64(f[2]),
		Harmonic: math.Float64frombits(binary.BigEndian.Uint64(raw)), Pagerank: math.Float64frombits(binary.BigEndian.Uint64(raw[8:])),
	}, nil
}

var errMalformed = errors.New("rank: malformed stored rank")

// ErrSuperseded is returned by Writer.Commit when a later ranking has been
// committed since the writer's began.
var ErrSuperseded = errors.New("rank: a newer ranking is already stored")

var commitMu sync.Mutex

// Writer stores a new generation of ranks. Put every rank, then Commit,
// which makes the generation current; until then readers see the last one.
type Writer struct {
	db  *store.DB
	gen uint64
	b   *pebble.Batch
}

// NewWriter starts writing generation gen, which must be higher than that
// of every ranking before it (the gateway and serve use the start time in
// nanoseconds).
func NewWriter(db *store.DB, gen uint64) *Writer {
	return &Writer{db: db, gen: gen, b: db.NewBatch()}
}

// Put stores the rank of a host or domain (named as urlnorm.ReversedHost).
func (w *Writer) Put(level byte, name string, r *lgv1.Rank) error {
	if err := w.b.Set(rankKey(w.gen, level, name), encodeRank(r), nil); err != nil {
		return err
	}
	if w.b.Len() < 4<<20 {
		return nil
	}
	return w.Flush()
}

// Flush stores what was Put so far, as part of the generation, not yet
// current.
func (w *Writer) Flush() error {
	if err := w.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("rank: cannot store the ranks: %w", err)
	}
	w.b.Close()
	w.b = w.db.NewBatch()
	return nil
}

// Commit makes the generation current and deletes the older ones. meta
// describes the ranking (Ranks returns it as computed_at).
func (w *Writer) Commit(meta *lgv1.ComputeRanksResponse) error {
	if err := w.Flush(); err != nil {
		return err
	}
	defer w.b.Close()
	// The check of the current generation and the switch are one step
	// for all of this process's writers (a node stores the rankings of
	// every gateway); a data directory has one process.
	commitMu.Lock()
	defer commitMu.Unlock()
	cur, _, err := current(w.db)
	if err != nil {
		return err
	}
	if cur > w.gen {
		w.Abort()
		return ErrSuperseded
	}
	m, err := proto.Marshal(meta)
	if err != nil {
		return err
	}
	b := w.db.NewBatch()
	defer b.Close()
	if err := b.Set(currentKey(), append(binary.BigEndian.AppendUint64(nil, w.gen), m...), nil); err != nil {
		return err
	}
	// Older generations only: a newer one may be being written.
	if err := b.DeleteRange(genPrefix(0), genPrefix(w.gen), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("rank: cannot store the ranks: %w", err)
	}
	return nil
}

// Abort deletes what the writer stored.
func (w *Writer) Abort() {
	w.b.Close()
	_ = w.db.DeleteRange(genPrefix(w.gen), genPrefix(w.gen+1), pebble.NoSync)
}

// Save stores a ranking as the current one.
func Save(db *store.DB, gen uint64, res *Result, meta *lgv1.ComputeRanksResponse) error {
	w := NewWriter(db, gen)
	for _, lv := range res.Levels() {
		for _, r := range lv.Ranks() {
			if err := w.Put(lv.Level, r.Name, r.Rank); err != nil {
				w.Abort()
				return err
			}
		}
	}
	return w.Commit(meta)
}

// current returns the current generation and what describes it; 0 and nil
// when nothing was ranked yet.
func current(r pebble.Reader) (uint64, *lgv1.ComputeRanksResponse, error) {
	raw, closer, err := r.Get(currentKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	defer closer.Close()
	meta := &lgv1.ComputeRanksResponse{}
	if len(raw) < 8 || proto.Unmarshal(raw[8:], meta) != nil {
		return 0, nil, errMalformed
	}
	return binary.BigEndian.Uint64(raw), meta, nil
}

// Scores holds the authority (score) of every registrable domain of one
// ranking in memory, for the views, which look up a score for every
// source domain they show or filter: a map entry (about 60 bytes) per
// domain rather than a Pebble read per lookup.
type Scores struct {
	gen    uint64
	pages  bool
	domain map[string]uint8
}

// LoadScores reads the domain scores of r's current ranks; with no ranks
// every score is 0.
func LoadScores(ctx context.Context, r pebble.Reader) (*Scores, error) {
	rr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	s := &Scores{gen: rr.gen, pages: rr.meta.GetPages() > 0, domain: make(map[string]uint8, rr.meta.GetDomains())}
	err = rr.Each(ctx, LevelDomain, "", func(name string, r *lgv1.Rank) bool {
		s.domain[name] = uint8(r.GetScore())
		return true
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Any reports whether any domain has a score: without a ranking every
// authority is 0, and callers skip working out which domain to look up.
func (s *Scores) Any() bool { return s != nil && len(s.domain) > 0 }

// Domain returns the score of a registrable domain (named as
// urlnorm.ReversedHost), 0 if it has none. A nil Scores has none.
func (s *Scores) Domain(name string) int32 {
	if s == nil {
		return 0
	}
	return int32(s.domain[name])
}

// Page returns the score of a page (keyed by the index's SURT of its URL)
// as r holds it, 0 if it has none; without page ranks it reads nothing.
func (s *Scores) Page(r pebble.Reader, surt string) (int32, error) {
	if s == nil || !s.pages {
		return 0, nil
	}
	raw, closer, err := r.Get(rankKey(s.gen, LevelPage, surt))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	rk, err := decodeRank(raw)
	return rk.GetScore(), err
}

// Reader reads the current ranks of a snapshot (or any pebble.Reader).
type Reader struct {
	r    pebble.Reader
	gen  uint64
	meta *lgv1.ComputeRanksResponse
}

// NewReader returns a Reader of r's current ranks.
func NewReader(r pebble.Reader) (*Reader, error) {
	gen, meta, err := current(r)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, gen: gen, meta: meta}, nil
}

// Meta describes the ranking read, nil if there is none.
func (rr *Reader) Meta() *lgv1.ComputeRanksResponse { return rr.meta }

// Get returns the rank of a host or domain (named as urlnorm.ReversedHost),
// or nil if it has none.
func (rr *Reader) Get(level byte, name string) (*lgv1.Rank, error) {
	if rr.meta == nil {
		return nil, nil
	}
	raw, closer, err := rr.r.Get(rankKey(rr.gen, level, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	r, err := decodeRank(raw)
	if err != nil {
		return nil, fmt.Errorf("%w of %s", err, name)
	}
	return r, nil
}

// Each calls fn for the ranks of a level in order of name, from the first
// name after after ("" for the start), until fn returns false.
func (rr *Reader) Each(ctx context.Context, level byte, after string, fn func(name string, r *lgv1.Rank) bool) error {
	if rr.meta == nil {
		return nil
	}
	lo := rankKey(rr.gen, level, "")
	start := lo
	if after != "" {
		start = append(rankKey(rr.gen, level, after), 0)
	}
	it, err := rr.r.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: store.PrefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.SeekGE(start); valid; valid = it.Next() {
		r, err := decodeRank(it.Value())
		if err != nil {
			return err
		}
		if !fn(string(it.Key()[len(lo):]), r) {
			break
		}
	}
	return it.Error()
}

// Get returns the current rank of a host or domain in r, or nil.
func Get(r pebble.Reader, level byte, name string) (*lgv1.Rank, error) {
	rr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	return rr.Get(level, name)
}
