package rank

import (
	"errors"
	"testing"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/store"
)

// A generation becomes visible whole at its commit, replaces and deletes
// the older ones, and an older generation committed late is refused.
func TestGenerations(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	score := func(name string) int32 {
		t.Helper()
		r, err := Get(db, LevelDomain, name)
		if err != nil {
			t.Fatal(err)
		}
		return r.GetScore()
	}
	put := func(gen uint64, scores map[string]int32) *Writer {
		t.Helper()
		w := NewWriter(db, gen)
		for name, s := range scores {
			if err := w.Put(LevelDomain, name, &lgv1.Rank{Score: s}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w1 := put(10, map[string]int32{"com.a": 50, "com.b": 20})
	if score("com.a") != 0 {
		t.Error("a generation is visible before its commit")
	}
	if err := w1.Commit(&lgv1.ComputeRanksResponse{Domains: 2}); err != nil {
		t.Fatal(err)
	}
	if score("com.a") != 50 || score("com.b") != 20 {
		t.Errorf("after commit: a %d, b %d", score("com.a"), score("com.b"))
	}
	old := put(5, map[string]int32{"com.a": 1})
	w2 := put(20, map[string]int32{"com.a": 70})
	if score("com.a") != 50 {
		t.Error("a second generation is visible before its commit")
	}
	if err := w2.Commit(&lgv1.ComputeRanksResponse{Domains: 1}); err != nil {
		t.Fatal(err)
	}
	if score("com.a") != 70 || score("com.b") != 0 {
		t.Errorf("after the second commit: a %d, b %d (b is not in it)", score("com.a"), score("com.b"))
	}
	if err := old.Commit(&lgv1.ComputeRanksResponse{}); !errors.Is(err, ErrSuperseded) {
		t.Errorf("committing an older generation: %v, want ErrSuperseded", err)
	}
	if score("com.a") != 70 {
		t.Error("an older generation replaced a newer one")
	}
	// Only the current generation is left.
	n := 0
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
		if k := it.Key(); len(k) > 1 && k[0] == store.PrefixRank && k[1] == keyGeneration {
			n++
		}
	}
	it.Close()
	if n != 1 {
		t.Errorf("%d ranks stored, want the 1 of the current generation", n)
	}
	s, err := LoadScores(t.Context(), db)
	if err != nil || s.Domain("com.a") != 70 || s.Domain("com.zz") != 0 {
		t.Errorf("LoadScores: %v, a %d", err, s.Domain("com.a"))
	}
}
