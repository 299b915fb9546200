package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
)

type intersectCmd struct{}

func (*intersectCmd) name() string { return "intersect" }
func (*intersectCmd) synopsis() string {
	return "list the domains linking to several competitors and not to your own site"
}

func (r remoteAPI) Intersect(ctx context.Context, req *lgv1.IntersectRequest) (*lgv1.IntersectResponse, error) {
	return r.c.Intersect(ctx, req)
}

const intersectUsage = `intersect [--data DIR | --server ADDR] [--scope url|prefix|host|domain] [--min-targets K] [--exclude OWN] [flags] COMPETITOR...

Lists the registrable domains that link to at least K of the COMPETITORs
(1 to 10 URLs, or hosts/domains with --scope) and not to OWN: the most
competitors linked first, then the highest authority, then the most
backlinks. The filter flags apply to every COMPETITOR and to OWN alike.

Columns: domain, authority, targets_linked, then backlinks_1 ... backlinks_N,
the domain's backlinks to each COMPETITOR in the order given (tables head
these with the COMPETITORs themselves; TSV and CSV keep plain names).`

// intersectColumns are the fixed columns and one backlinks column per
// competitor.
func intersectColumns(competitors []string) []column[*lgv1.IntersectDomain] {
	num := func(n int64) string { return fmt.Sprint(n) }
	cols := []column[*lgv1.IntersectDomain]{
		{name: "domain", value: (*lgv1.IntersectDomain).GetDomain, table: (*lgv1.IntersectDomain).GetDomain},
		{name: "authority", value: func(d *lgv1.IntersectDomain) string { return num(int64(d.Authority)) },
			table: func(d *lgv1.IntersectDomain) string { return num(int64(d.Authority)) }},
		{name: "targets_linked", value: func(d *lgv1.IntersectDomain) string { return num(int64(d.TargetsLinked)) },
			table: func(d *lgv1.IntersectDomain) string { return num(int64(d.TargetsLinked)) }},
	}
	for i, c := range competitors {
		at := func(d *lgv1.IntersectDomain) string {
			if i < len(d.Backlinks) {
				return num(d.Backlinks[i])
			}
			return ""
		}
		cols = append(cols, column[*lgv1.IntersectDomain]{name: fmt.Sprintf("backlinks_%d", i+1), title: truncate(c, 40), value: at, table: at})
	}
	return cols
}

func (c *intersectCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("intersect", intersectUsage, stderr)
	var f queryFlags
	f.register(fs, true, true)
	minTargets := fs.Int("min-targets", 1, "keep the domains linking to at least this many COMPETITORs (1 to their number)")
	exclude := fs.String("exclude", "", "your own URL, host or domain (as --scope says): leave out the domains linking to it")
	competitors, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	// Every mistake at once, as the other query commands report them.
	var errs []error
	switch n := len(competitors); {
	case n == 0:
		errs = append(errs, errors.New("give 1 to 10 COMPETITORs (URLs, or hosts/domains with --scope)"))
	case n > indexer.MaxIntersectTargets:
		errs = append(errs, fmt.Errorf("%d COMPETITORs given; at most %d", n, indexer.MaxIntersectTargets))
	case *minTargets < 1 || *minTargets > n:
		errs = append(errs, fmt.Errorf("--min-targets %d: use 1 to %d, the number of COMPETITORs", *minTargets, n))
	}
	for i, t := range competitors {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("COMPETITOR %d is empty", i+1))
		}
	}
	scope, filter, err := f.check()
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	req := &lgv1.IntersectRequest{
		Targets: competitors, Scope: scope, ExcludeTarget: *exclude, MinTargets: int32(*minTargets),
		Filter: filter, PageSize: f.pageSize(),
	}
	return listRows(ctx, &f, stdout, "no domains found", intersectColumns(competitors), func(ctx context.Context, api queryAPI, token string) ([]*lgv1.IntersectDomain, string, error) {
		req.PageToken = token
		res, err := api.Intersect(ctx, req)
		return res.GetDomains(), res.GetNextPageToken(), err
	})
}
