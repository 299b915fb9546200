package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/testweb"
)

// TestPagingWhileServeCrawls pages through backlinks over gRPC, a few rows a
// page, while serve crawls a test web and the rows keep coming: within each
// pass no row comes twice, and every row there both before and after the
// pass is in it. Passes go on until the crawl has found every link, and some
// of them must have run while the answer grew.
func TestPagingWhileServeCrawls(t *testing.T) {
	web := testweb.Start(t, testweb.Options{Seed: 11, PagesPerHost: 150})
	addr := freeAddr(t)
	args := []string{"serve", "--data", t.TempDir(), "--grpc-addr", addr, "--http-addr", freeAddr(t),
		"--allow-private-networks", "--delay", "10ms", "--per-host-concurrency", "1"}
	for _, s := range web.Seeds() {
		args = append(args, "--seed", s)
	}
	ctx, errOut, stop := startCommand(t, args)
	defer func() {
		if code := stop(); code != 0 {
			t.Errorf("serve exited %d; stderr: %s", code, errOut.String())
		}
	}()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := lgv1.NewLinkGraphServiceClient(conn)

	// The most linked URL, and the host whose links from other hosts are
	// the most.
	byURL, byHost := map[string]int{}, map[string]int{}
	for _, e := range web.Edges() {
		byURL[e.Target]++
		if host(t, e.Source) != host(t, e.Target) {
			byHost[host(t, e.Target)]++
		}
	}
	cases := []*lgv1.BacklinksRequest{
		{Target: top(byURL), Scope: lgv1.Scope_SCOPE_URL},
		{Target: top(byHost), Scope: lgv1.Scope_SCOPE_HOST},
	}
	wants := []int{byURL[top(byURL)], byHost[top(byHost)]}

	// all reads the whole answer in one page; pass pages through it.
	all := func(req *lgv1.BacklinksRequest) map[string]bool {
		r := &lgv1.BacklinksRequest{Target: req.Target, Scope: req.Scope, PageSize: 10000}
		res, err := client.Backlinks(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]bool{}
		for _, bl := range res.Backlinks {
			rows[rowKey(bl)] = true
		}
		if res.NextPageToken != "" {
			t.Fatalf("%s: more than one page of 10000", req.Target)
		}
		return rows
	}
	pass := func(req *lgv1.BacklinksRequest) map[string]bool {
		r := &lgv1.BacklinksRequest{Target: req.Target, Scope: req.Scope, PageSize: 3}
		rows := map[string]bool{}
		for {
			res, err := client.Backlinks(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, bl := range res.Backlinks {
				k := rowKey(bl)
				if rows[k] {
					t.Errorf("%s: %s twice in one pass", req.Target, k)
				}
				rows[k] = true
			}
			if r.PageToken = res.NextPageToken; r.PageToken == "" {
				return rows
			}
		}
	}

	// The cases take turns, so that both page while the crawl goes on.
	deadline := time.Now().Add(60 * time.Second)
	passes, grew := make([]int, len(cases)), make([]int, len(cases))
	for done := 0; done < len(cases); {
		done = 0
		for i, req := range cases {
			before := all(req)
			if len(before) == wants[i] {
				done++
				continue
			}
			got := pass(req)
			after := all(req)
			passes[i]++
			if len(after) > len(before) {
				grew[i]++
			}
			for k := range before {
				if after[k] && !got[k] {
					t.Errorf("%s: %s was there before and after a pass but not in it", req.Target, k)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every backlink found after 60s (passes %v)", passes)
		}
	}
	for i, req := range cases {
		t.Logf("%s (%v): %d passes, %d while the answer grew", req.Target, req.Scope, passes[i], grew[i])
		if grew[i] == 0 {
			t.Errorf("%s: no pass ran while the crawl added backlinks; the test shows nothing", req.Target)
		}
	}
}

func host(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// top is the key with the largest count.
func top(counts map[string]int) string {
	var best string
	for k, n := range counts {
		if n > counts[best] || n == counts[best] && k < best {
			best = k
		}
	}
	return best
}

// rowKey names a backlink row: its link, which is unique in an answer.
func rowKey(bl *lgv1.Backlink) string {
	return strings.Join([]string{bl.SourceUrl, bl.TargetUrl, bl.Type.String(), bl.AnchorText}, " | ")
}
