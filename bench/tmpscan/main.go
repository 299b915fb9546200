package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkgraph/linkgraph/internal/store"
)

func main() {
	db, err := store.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	defer db.Close()
	it, _ := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'a'}, UpperBound: []byte{'b'}})
	type st struct{ n, kb, vb int }
	m := map[string]*st{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		i := bytes.IndexByte(k[2:], 0)
		rec := string(k[1]) + string(k[2+i+1])
		s := m[rec]
		if s == nil {
			s = &st{}
			m[rec] = s
		}
		s.n++
		s.kb += len(k)
		s.vb += len(it.Value())
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		s := m[k]
		fmt.Printf("%s keys %8d  key B/rec %6.1f  val B/rec %6.1f\n", k, s.n, float64(s.kb)/float64(s.n), float64(s.vb)/float64(s.n))
	}
}
