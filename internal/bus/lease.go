package bus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the JetStream key-value bucket in which shard nodes hold
// their shards: one key per shard ("shard.N"), whose value names the node
// holding it. A shard node holds its shards while it runs, so that a second
// node started with the same or overlapping --shards is refused instead of
// reading (and resetting) the first one's consumers.
const LeaseBucket = "linkgraph-shard-leases"

// DefaultLeaseTTL is how long a shard stays held after its node stops
// renewing it (killed, or cut off from NATS); the node renews it every
// third of that.
const DefaultLeaseTTL = 15 * time.Second

// ErrLeaseLost is returned by ShardLease.Keep when another node holds one
// of the shards: this node must stop reading them.
var ErrLeaseLost = errors.New("bus: lost the lease of a shard")

// ShardLease is a shard node's hold on its shards [lo, hi). Keep renews
// it; Release gives it up.
type ShardLease struct {
	kv     jetstream.KeyValue
	holder string // the node: its host and data directory
	value  []byte // holder, a newline, and this process's instance
	ttl    time.Duration
	keys   []string
	revs   []uint64 // revision of this process's last write of keys[i]
	log    *slog.Logger
}

// AcquireShards takes the lease of shards [lo, hi) for holder, a name of
// the node that stays the same across its restarts (its host and data
// directory). A shard held by another holder is refused with
// ErrShardsInUse; one held by the same holder was held by this node's
// previous life, which the data directory's lock says is over, so it is
// taken over at once rather than after the TTL.
//
// replicas is the bucket's replication factor, as the streams' (see
// Config.Replicas).
func AcquireShards(ctx context.Context, js jetstream.JetStream, lo, hi int, holder string, ttl time.Duration, replicas int, log *slog.Logger) (*ShardLease, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if log == nil {
		log = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "shard node leases (linkgraph)",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bus: cannot open the lease bucket %s: %w", LeaseBucket, err)
	}
	var instance [8]byte
	rand.Read(instance[:])
	l := &ShardLease{kv: kv, holder: holder, value: []byte(holder + "\n" + hex.EncodeToString(instance[:])), ttl: ttl, log: log}
	for s := lo; s < hi; s++ {
		key := "shard." + strconv.Itoa(s)
		rev, err := l.take(ctx, key)
		if err != nil {
			l.Release(context.WithoutCancel(ctx))
			if held := (heldError{}); errors.As(err, &held) {
				return nil, fmt.Errorf("%w: shard %d is held by %s: another shard node runs with the same --shards, or overlapping ones; stop it first (the lease of a node that died lapses %s after it)", ErrShardsInUse, s, held.by, ttl)
			}
			return nil, fmt.Errorf("bus: cannot take the lease of shard %d: %w", s, err)
		}
		l.keys, l.revs = append(l.keys, key), append(l.revs, rev)
	}
	return l, nil
}

// heldError is ErrShardsInUse naming the holder.
type heldError struct{ by string }

func (e heldError) Error() string { return "shard held by " + e.by }

// take writes this process's value to key, if no other holder has it, and
// returns the revision written.
func (l *ShardLease) take(ctx context.Context, key string) (uint64, error) {
	for {
		rev, err := l.kv.Create(ctx, key, l.value)
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return rev, err
		}
		e, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // it lapsed meanwhile
		}
		if err != nil {
			return 0, err
		}
		if by := holderOf(e.Value()); by != l.holder {
			return 0, heldError{by}
		}
		rev, err = l.kv.Update(ctx, key, l.value, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // written meanwhile: look again
		}
		return rev, err
	}
}

func holderOf(value []byte) string {
	holder, _, _ := bytes.Cut(value, []byte("\n"))
	return string(holder)
}

// Keep renews the lease every third of its TTL until ctx is done, then
// returns nil. It returns an error wrapping ErrLeaseLost as soon as another
// node holds one of the shards. A renewal that fails otherwise (NATS
// unreachable) is retried at the next tick: while this node cannot reach
// NATS it reads nothing either, and the first renewal after it can tells
// whether another node took the shards meanwhile.
func (l *ShardLease) Keep(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i, key := range l.keys {
			rev, err := l.renew(ctx, key, l.revs[i])
			switch {
			case errors.Is(err, ErrLeaseLost):
				return err
			case err != nil && ctx.Err() == nil:
				l.log.Warn("cannot renew the shard lease; retrying", "key", key, "err", err)
			case err == nil:
				l.revs[i] = rev
			}
		}
	}
}

// renew rewrites key if this process still holds it.
func (l *ShardLease) renew(ctx context.Context, key string, rev uint64) (uint64, error) {
	next, err := l.kv.Update(ctx, key, l.value, rev)
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return next, err
	}
	// Not the revision this process wrote last: the key lapsed, or was
	// written by another process, or by this one with the reply lost.
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err := l.take(ctx, key)
		if held := (heldError{}); errors.As(err, &held) {
			return 0, fmt.Errorf("%w: %s is now held by %s", ErrLeaseLost, key, held.by)
		}
		return rev, err
	case err != nil:
		return 0, err
	case !bytes.Equal(e.Value(), l.value):
		return 0, fmt.Errorf("%w: %s is now held by %s", ErrLeaseLost, key, holderOf(e.Value()))
	}
	return e.Revision(), nil
}

// Release deletes the keys this process still holds, so that another node
// may take the shards at once.
func (l *ShardLease) Release(ctx context.Context) error {
	var errs []error
	for i, key := range l.keys {
		err := l.kv.Delete(ctx, key, jetstream.LastRevision(l.revs[i]))
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			errs = append(errs, fmt.Errorf("bus: cannot release the lease of %s: %w", key, err))
		}
	}
	l.keys, l.revs = nil, nil
	return errors.Join(errs...)
}
