package bus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A second holder is refused shards the first holds, even where their
// ranges only overlap; the first holder's next life takes them over at
// once; released shards are free at once.
func TestShardLeaseRefusesAnotherHolder(t *testing.T) {
	ctx := context.Background()
	js := startJetStream(t)
	a, err := AcquireShards(ctx, js, 0, 8, "host-a:/data", time.Minute, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireShards(ctx, js, 6, 12, "host-b:/data", time.Minute, 1, nil)
	if !errors.Is(err, ErrShardsInUse) || !strings.Contains(err.Error(), "shard 6 is held by host-a:/data") {
		t.Fatalf("an overlapping range of another holder: %v, want ErrShardsInUse naming shard 6 and host-a", err)
	}
	// The refused holder let go of what it took before the refusal.
	c, err := AcquireShards(ctx, js, 8, 12, "host-c:/data", time.Minute, 1, nil)
	if err != nil {
		t.Fatalf("shards 8-11 after a refused acquire: %v", err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// a's process died without releasing: its next life takes over.
	a2, err := AcquireShards(ctx, js, 0, 8, "host-a:/data", time.Minute, 1, nil)
	if err != nil {
		t.Fatalf("the same holder again: %v", err)
	}
	// The dead process's renewal finds the lease gone.
	if _, err := a.renew(ctx, a.keys[0], a.revs[0]); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renewal by the earlier life: %v, want ErrLeaseLost", err)
	}
	if err := a2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireShards(ctx, js, 0, 8, "host-b:/data", time.Minute, 1, nil); err != nil {
		t.Fatalf("released shards: %v", err)
	}
}

// A lease that its holder renews stays held past its TTL; one that nobody
// renews lapses, and another holder may take it.
func TestShardLeaseLapsesUnlessKept(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := startJetStream(t)
	const ttl = 1500 * time.Millisecond
	a, err := AcquireShards(ctx, js, 0, 2, "host-a:/data", ttl, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := make(chan error, 1)
	keepCtx, stopKeeping := context.WithCancel(ctx)
	go func() { kept <- a.Keep(keepCtx) }()
	time.Sleep(2 * ttl)
	if _, err := AcquireShards(ctx, js, 0, 2, "host-b:/data", ttl, 1, nil); !errors.Is(err, ErrShardsInUse) {
		t.Fatalf("a kept lease after twice its TTL: %v, want ErrShardsInUse", err)
	}
	stopKeeping()
	if err := <-kept; err != nil {
		t.Fatalf("Keep: %v", err)
	}
	deadline := time.Now().Add(10 * ttl)
	for {
		_, err := AcquireShards(ctx, js, 0, 2, "host-b:/data", ttl, 1, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrShardsInUse) || time.Now().After(deadline) {
			t.Fatalf("a lease nobody renews, %v after: %v", 10*ttl, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The first holder, renewing again, learns it lost the shards.
	if err := a.Keep(ctx); !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "host-b:/data") {
		t.Fatalf("Keep after another holder took the shards: %v, want ErrLeaseLost naming host-b", err)
	}
}
