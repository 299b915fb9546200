package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer/rank"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// buildIntersectIndex writes a web for link intersect into a new data
// directory and closes it. The competitors are comp1.com, comp2.net and
// comp3.org, one's own site own.com:
//
//	all.org        comp1.com twice (www.), comp2.net, comp3.org (from blog.)
//	pair.net       comp1.com, comp3.org
//	nofollow.info  comp1.com, comp3.org, both nofollow
//	both.biz       comp1.com, comp2.net and own.com
//	single.io      comp2.net
//	comp1.com      itself (internal) and comp2.net
//
// pair.net has an authority of 30, the others none.
func buildIntersectIndex(t *testing.T) string {
	t.Helper()
	dir, db, ix := newTestIndex(t)
	defer db.Close()
	crawl := func(page string, links ...*lgv1.OutLink) {
		t.Helper()
		recordPage(t, ix, &lgv1.PageResult{Url: page, Status: 200, FetchedAt: qday1, Links: links})
	}
	link := func(url string, rel ...string) *lgv1.OutLink {
		return &lgv1.OutLink{Url: url, AnchorText: "a", Rel: rel, Type: lgv1.LinkType_LINK_TYPE_A}
	}
	crawl("http://www.all.org/", link("http://www.comp1.com/"), link("http://comp1.com/pricing"), link("http://comp2.net/"))
	crawl("http://blog.all.org/", link("http://comp3.org/"))
	crawl("http://pair.net/", link("http://www.comp1.com/"), link("http://comp3.org/"))
	crawl("http://nofollow.info/", link("http://www.comp1.com/", "nofollow"), link("http://comp3.org/", "nofollow"))
	crawl("http://both.biz/", link("http://www.comp1.com/"), link("http://comp2.net/"), link("http://own.com/"))
	crawl("http://single.io/", link("http://comp2.net/"))
	crawl("http://www.comp1.com/", link("http://comp1.com/pricing"), link("http://comp2.net/"))
	w := rank.NewWriter(db, 1)
	if err := w.Put(rank.LevelDomain, urlnorm.ReversedHost("pair.net"), &lgv1.Rank{Score: 30}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(&lgv1.ComputeRanksResponse{Domains: 1, ComputedAt: timestamppb.New(time.Unix(0, qday1))}); err != nil {
		t.Fatal(err)
	}
	return dir
}

var intersectArgs = []string{"intersect", "--scope", "domain", "--min-targets", "2", "--exclude", "own.com", "comp1.com", "comp2.net", "comp3.org"}

func TestIntersectCommand(t *testing.T) {
	dir := buildIntersectIndex(t)
	cli := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, append(args, "--data", dir)...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		return out
	}
	with := func(extra ...string) []string { return append(slices.Clone(intersectArgs), extra...) }
	header := "domain\tauthority\ttargets_linked\tbacklinks_1\tbacklinks_2\tbacklinks_3\n"
	want := header +
		"all.org\t0\t3\t2\t1\t1\n" +
		"pair.net\t30\t2\t1\t0\t1\n" +
		"nofollow.info\t0\t2\t1\t0\t1\n"
	if got := cli(with("--format", "tsv")...); got != want {
		t.Errorf("tsv:\n%s\nwant\n%s", got, want)
	}
	// Paging one row at a time, or stopping early, keeps the order.
	if got := cli(with("--format", "tsv", "--page-size", "1")...); got != want {
		t.Errorf("tsv by one row:\n%s\nwant\n%s", got, want)
	}
	if got, want := cli(with("--format", "tsv", "--page-size", "1", "--limit", "2")...), header+"all.org\t0\t3\t2\t1\t1\npair.net\t30\t2\t1\t0\t1\n"; got != want {
		t.Errorf("--limit 2:\n%s\nwant\n%s", got, want)
	}
	// Without --exclude both.biz comes in; with one competitor needed,
	// single.io and comp1.com (its links to itself do not count) too.
	// Authority orders rows linking to as many competitors.
	if got, want := cli("intersect", "--scope", "domain", "--format", "csv", "comp1.com", "comp2.net", "comp3.org"),
		"domain,authority,targets_linked,backlinks_1,backlinks_2,backlinks_3\n"+
			"all.org,0,3,2,1,1\n"+
			"pair.net,30,2,1,0,1\n"+
			"both.biz,0,2,1,1,0\n"+
			"nofollow.info,0,2,1,0,1\n"+
			"comp1.com,0,1,0,1,0\n"+
			"single.io,0,1,0,1,0\n"; got != want {
		t.Errorf("csv, at least 1:\n%s\nwant\n%s", got, want)
	}
	// The filter applies to every competitor.
	if got, want := cli(with("--format", "tsv", "--follow-only")...), header+"all.org\t0\t3\t2\t1\t1\npair.net\t30\t2\t1\t0\t1\n"; got != want {
		t.Errorf("--follow-only:\n%s\nwant\n%s", got, want)
	}
	// URL scope, flags after the competitors; rows of the same authority
	// and as many backlinks by domain.
	if got, want := cli("intersect", "http://www.comp1.com/", "http://comp3.org/", "--min-targets", "2", "--format", "tsv"),
		"domain\tauthority\ttargets_linked\tbacklinks_1\tbacklinks_2\n"+
			"pair.net\t30\t2\t1\t1\n"+
			"all.org\t0\t2\t1\t1\n"+
			"nofollow.info\t0\t2\t1\t1\n"; got != want {
		t.Errorf("url scope:\n%s\nwant\n%s", got, want)
	}
	// Tables head the backlinks columns with the competitors.
	table := strings.Split(strings.TrimSuffix(cli(intersectArgs...), "\n"), "\n")
	if h := strings.Fields(table[0]); !slices.Equal(h, []string{"DOMAIN", "AUTHORITY", "TARGETS", "LINKED", "comp1.com", "comp2.net", "comp3.org"}) || len(table) != 4 || !slices.Equal(strings.Fields(table[1]), []string{"all.org", "0", "3", "2", "1", "1"}) {
		t.Errorf("table:\n%s", strings.Join(table, "\n"))
	}
	if got := cli("intersect", "--scope", "domain", "--min-targets", "3", "comp2.net", "comp3.org", "single.io"); got != "no domains found\n" {
		t.Errorf("nothing found: %q", got)
	}
	// JSON: one IntersectDomain per line.
	var rows []*lgv1.IntersectDomain
	for _, line := range strings.Split(strings.TrimSuffix(cli(with("--format", "json")...), "\n"), "\n") {
		d := &lgv1.IntersectDomain{}
		if err := protojson.Unmarshal([]byte(line), d); err != nil {
			t.Fatalf("json line %q: %v", line, err)
		}
		rows = append(rows, d)
	}
	wantRows := []*lgv1.IntersectDomain{
		{Domain: "all.org", TargetsLinked: 3, Backlinks: []int64{2, 1, 1}},
		{Domain: "pair.net", Authority: 30, TargetsLinked: 2, Backlinks: []int64{1, 0, 1}},
		{Domain: "nofollow.info", TargetsLinked: 2, Backlinks: []int64{1, 0, 1}},
	}
	if !slices.EqualFunc(rows, wantRows, func(a, b *lgv1.IntersectDomain) bool { return proto.Equal(a, b) }) {
		t.Errorf("json rows %v, want %v", rows, wantRows)
	}

	// The same index served: --server prints the same, and GET
	// /v1/intersect answers the same rows.
	local := map[string]string{}
	cases := [][]string{with("--format", "tsv"), with("--format", "json"), with(), with("--format", "csv", "--page-size", "1", "--follow-only")}
	for _, args := range cases {
		local[strings.Join(args, " ")] = cli(args...)
	}
	addr, base := serveIndex(t, dir, apiserver.Config{})
	for _, args := range cases {
		code, out, errOut := runCLI(t, append(slices.Clone(args), "--server", addr)...)
		if want := local[strings.Join(args, " ")]; code != 0 || out != want {
			t.Errorf("%q --server: exit %d %s\n%s\n--data printed\n%s", args, code, errOut, out, want)
		}
	}
	get := func(q url.Values) (int, []byte) {
		t.Helper()
		res, err := http.Get(base + "/v1/intersect?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	q := url.Values{"targets": {"comp1.com", "comp2.net", "comp3.org"}, "scope": {"domain"}, "min_targets": {"2"}, "exclude_target": {"own.com"}}
	code, body := get(q)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/intersect: HTTP %d %s", code, body)
	}
	var res lgv1.IntersectResponse
	if err := protojson.Unmarshal(body, &res); err != nil {
		t.Fatalf("GET /v1/intersect: %v: %s", err, body)
	}
	if !slices.EqualFunc(res.Domains, wantRows, func(a, b *lgv1.IntersectDomain) bool { return proto.Equal(a, b) }) || res.NextPageToken != "" {
		t.Errorf("GET /v1/intersect: %v, want %v", &res, wantRows)
	}
	// Every row spelled as the CLI's JSON spells it.
	var raw struct {
		Domains []json.RawMessage `json:"domains"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	jsonLines := strings.Split(strings.TrimSuffix(local[strings.Join(with("--format", "json"), " ")], "\n"), "\n")
	for i, r := range raw.Domains {
		var a, b any
		if err := json.Unmarshal(r, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(jsonLines[i]), &b); err != nil {
			t.Fatal(err)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("row %d: HTTP %s, CLI %s", i, ja, jb)
		}
	}
	// Pages over HTTP.
	q.Set("page_size", "2")
	_, body = get(q)
	var page lgv1.IntersectResponse
	if err := protojson.Unmarshal(body, &page); err != nil || len(page.Domains) != 2 || page.NextPageToken == "" {
		t.Fatalf("page 1 of 2: %v %s", err, body)
	}
	q.Set("page_token", page.NextPageToken)
	_, body = get(q)
	if err := protojson.Unmarshal(body, &page); err != nil || len(page.Domains) != 1 || page.Domains[0].Domain != "nofollow.info" || page.NextPageToken != "" {
		t.Errorf("page 2 of 2: %v %s", err, body)
	}
	for _, bad := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"scope": {"domain"}}, "0 targets"},
		{url.Values{"targets": {"comp1.com", "comp2.net"}, "scope": {"domain"}, "min_targets": {"3"}}, "min_targets 3 out of range 1..2"},
		{url.Values{"target": {"comp1.com"}, "scope": {"domain"}}, `unknown query parameter "target"`},
	} {
		code, body := get(bad.q)
		var e struct{ Message string }
		json.Unmarshal(body, &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Message, bad.want) {
			t.Errorf("GET /v1/intersect?%s: HTTP %d %s; want 400 saying %q", bad.q.Encode(), code, body, bad.want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIntersectCommandUsageErrors(t *testing.T) {
	dir := buildIntersectIndex(t)
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "c" + string(rune('a'+i)) + ".example"
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--scope", "domain"}, "give 1 to 10 COMPETITORs"},
		{append([]string{"--scope", "domain"}, eleven...), "11 COMPETITORs given; at most 10"},
		{[]string{"--scope", "domain", "--min-targets", "3", "comp1.com", "comp2.net"}, "--min-targets 3: use 1 to 2"},
		{[]string{"--scope", "domain", "--min-targets", "0", "comp1.com"}, "--min-targets 0: use 1 to 1"},
		{[]string{"--scope", "domain", "comp1.com", ""}, "COMPETITOR 2 is empty"},
		{[]string{"--scope", "planet", "comp1.com"}, `--scope "planet"`},
		{[]string{"--min-targets", "x", "comp1.com"}, "--min-targets"},
		// Refused by the service, still the caller's mistake.
		{[]string{"comp1.com"}, `target "comp1.com" is not an absolute http(s) URL`},
		{[]string{"--scope", "domain", "comp1.com", "www.comp1.com"}, "both select comp1.com"},
		{[]string{"--scope", "domain", "--exclude", "http://", "comp1.com"}, "exclude_target"},
	} {
		args := append([]string{"intersect", "--data", dir}, c.args...)
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
	// Several mistakes are reported together.
	_, _, errOut := runCLI(t, "intersect", "--data", dir, "--format", "xml")
	if !strings.Contains(errOut, "--format") || !strings.Contains(errOut, "COMPETITOR") {
		t.Errorf("want both mistakes reported, got %q", errOut)
	}
}
