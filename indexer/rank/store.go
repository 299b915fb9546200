package rank

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
)

// Levels of stored ranks.
const (
	LevelHost   = 'h'
	LevelDomain = 'd'
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

func rankKey(level byte, name string) []byte {
	return append([]byte{store.PrefixRank, level}, name...)
}

// Save replaces the stored ranks of a level with these, in one batch:
// names[i] (as urlnorm.ReversedHost) has harmonic centrality hc[i] and
// PageRank pr[i].
func Save(db *store.DB, level byte, names []string, hc, pr []float64) error {
	score := Score(pr)
	hcPos, prPos := positions(names, hc), positions(names, pr)
	b := db.NewWriteBatch()
	defer b.Close()
	lo := []byte{store.PrefixRank, level}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: store.PrefixEnd(lo)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := b.Delete(it.Key(), nil); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	var val []byte
	for i, name := range names {
		val = binary.AppendUvarint(val[:0], uint64(score[i]))
		val = binary.AppendUvarint(val, uint64(hcPos[i]))
		val = binary.AppendUvarint(val, uint64(prPos[i]))
		val = binary.BigEndian.AppendUint64(val, math.Float64bits(hc[i]))
		val = binary.BigEndian.AppendUint64(val, math.Float64bits(pr[i]))
		if err := b.Set(rankKey(level, name), val, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("rank: cannot store the ranks: %w", err)
	}
	return nil
}

// Get returns the stored rank of a host or domain (named as
// urlnorm.ReversedHost), or nil if it has none.
func Get(r pebble.Reader, level byte, name string) (*lgv1.Rank, error) {
	raw, closer, err := r.Get(rankKey(level, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	var f [3]uint64
	for i := range f {
		v, n := binary.Uvarint(raw)
		if n <= 0 {
			return nil, fmt.Errorf("rank: malformed rank of %s", name)
		}
		f[i], raw = v, raw[n:]
	}
	if len(raw) != 16 {
		return nil, fmt.Errorf("rank: malformed rank of %s", name)
	}
	return &lgv1.Rank{
		Score: int32(f[0]), HarmonicPos: int64(f[1]), PagerankPos: int64(f[2]),
		Harmonic: math.Float64frombits(binary.BigEndian.Uint64(raw)), Pagerank: math.Float64frombits(binary.BigEndian.Uint64(raw[8:])),
	}, nil
}
