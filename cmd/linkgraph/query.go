package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/apiserver"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
)

// queryAPI is the part of LinkGraphService the query commands call. The
// in-process *indexer.GRPCServer (--data) satisfies it as is and a gRPC
// client (--server) through remoteAPI, so both paths print the same.
type queryAPI interface {
	Backlinks(context.Context, *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error)
	ReferringDomains(context.Context, *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error)
	Anchors(context.Context, *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error)
	Summary(context.Context, *lgv1.SummaryRequest) (*lgv1.SummaryResponse, error)
	Outlinks(context.Context, *lgv1.OutlinksRequest) (*lgv1.OutlinksResponse, error)
	Velocity(context.Context, *lgv1.VelocityRequest) (*lgv1.VelocityResponse, error)
	ComputeRanks(context.Context, *lgv1.ComputeRanksRequest) (*lgv1.ComputeRanksResponse, error)
	Ranks(context.Context, *lgv1.RanksRequest) (*lgv1.RanksResponse, error)
	Intersect(context.Context, *lgv1.IntersectRequest) (*lgv1.IntersectResponse, error)
}

var (
	_ queryAPI = (*indexer.GRPCServer)(nil)
	_ queryAPI = remoteAPI{}
)

type remoteAPI struct{ c lgv1.LinkGraphServiceClient }

func (r remoteAPI) Backlinks(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error) {
	return r.c.Backlinks(ctx, req)
}

func (r remoteAPI) ReferringDomains(ctx context.Context, req *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error) {
	return r.c.ReferringDomains(ctx, req)
}

func (r remoteAPI) Anchors(ctx context.Context, req *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error) {
	return r.c.Anchors(ctx, req)
}

func (r remoteAPI) Summary(ctx context.Context, req *lgv1.SummaryRequest) (*lgv1.SummaryResponse, error) {
	return r.c.Summary(ctx, req)
}

func (r remoteAPI) Outlinks(ctx context.Context, req *lgv1.OutlinksRequest) (*lgv1.OutlinksResponse, error) {
	return r.c.Outlinks(ctx, req)
}

func (r remoteAPI) Velocity(ctx context.Context, req *lgv1.VelocityRequest) (*lgv1.VelocityResponse, error) {
	return r.c.Velocity(ctx, req)
}

// queryFlags are the flags the query commands share: where to ask, what to
// filter and how to print.
type queryFlags struct {
	data, server        string
	tokenFile, tlsCA    string
	tls, insecure       bool
	format              string
	limit, size         int
	scope               string
	followOnly          bool
	types, internal     string
	firstFrom, firstTo  string
	lastFrom, lastTo    string
	anchorContains      string
	includeLost         bool
	state               string
	lostFrom, lostTo    string
	minAuthority        int
	withScope, withPage bool
	// latestOnly leaves out the flags of lost links, for a command that
	// lists one crawl's links (outlinks): set it before register.
	latestOnly bool
}

// register adds the shared flags to fs; withScope adds --scope (not for
// outlinks, which name one page), withPage adds --limit (not for stats).
func (f *queryFlags) register(fs *flag.FlagSet, withScope, withPage bool) {
	f.registerSelection(fs, withScope)
	fs.StringVar(&f.format, "format", "table", "output format: table, tsv, csv (both with a header row) or json (one object per line)")
	if withPage {
		f.withPage = true
		fs.IntVar(&f.limit, "limit", 0, "print at most this many rows, paging as needed (0: all)")
		fs.IntVar(&f.size, "page-size", 0, fmt.Sprintf("rows per request, 1..%d (default: --limit if smaller, else %d)", indexer.MaxPageSize, indexer.MaxPageSize))
	}
}

// registerSelection adds the flags that say where to ask and which links
// to select, without those of printing: export has its own.
func (f *queryFlags) registerSelection(fs *flag.FlagSet, withScope bool) {
	f.withScope = withScope
	f.registerConn(fs)
	if withScope {
		fs.StringVar(&f.scope, "scope", "url", "what TARGET names: url (exactly), prefix (every URL starting with it), host, or domain (with all subdomains)")
	}
	fs.BoolVar(&f.followOnly, "follow-only", false, "only links that pass authority (no nofollow, ugc, sponsored)")
	fs.IntVar(&f.minAuthority, "min-authority", 0, "only links from registrable domains whose authority (0-100, from the latest rank) is at least this")
	fs.StringVar(&f.types, "types", "", "only these comma-separated link types: "+strings.Join(linkTypeNames(), ","))
	fs.StringVar(&f.internal, "internal", "", "links from the target's own registrable domain: include or exclude (default: excluded for host and domain scope)")
	fs.StringVar(&f.firstFrom, "first-seen-from", "", "only links first seen at or after this time (RFC 3339, or YYYY-MM-DD for midnight UTC)")
	fs.StringVar(&f.firstTo, "first-seen-to", "", "only links first seen before this time (exclusive)")
	fs.StringVar(&f.lastFrom, "last-seen-from", "", "only links last seen at or after this time")
	fs.StringVar(&f.lastTo, "last-seen-to", "", "only links last seen before this time (exclusive)")
	fs.StringVar(&f.anchorContains, "anchor-contains", "", "only links whose anchor text contains this (case-insensitive)")
	if f.latestOnly {
		return
	}
	fs.BoolVar(&f.includeLost, "include-lost", false, "also links gone from the source's latest crawl (the same as --state all)")
	fs.StringVar(&f.state, "state", "", "live (the default), lost (gone from the source's latest crawl) or all")
	fs.StringVar(&f.lostFrom, "lost-from", "", "only links lost at or after this time (implies --state lost)")
	fs.StringVar(&f.lostTo, "lost-to", "", "only links lost before this time (exclusive; implies --state lost)")
}

// registerConn adds the flags that say where to ask: --data, or --server
// and how to connect to it.
func (f *queryFlags) registerConn(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", "", "read the index in this data directory (default "+DefaultDataDir+" unless --server is given)")
	fs.StringVar(&f.server, "server", "", "ask the linkgraph server at this gRPC address (host:port)")
	fs.StringVar(&f.tokenFile, "token-file", "", "with --server: send the bearer token in this file")
	fs.BoolVar(&f.tls, "tls", false, "with --server: connect with TLS, verifying the server against the system roots")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "with --server: connect with TLS, verifying the server against the PEM certificates in this file")
	fs.BoolVar(&f.insecure, "insecure", false, "with --server: connect with TLS without verifying the server's certificate")
}

var scopeNames = map[string]lgv1.Scope{
	"url": lgv1.Scope_SCOPE_URL, "prefix": lgv1.Scope_SCOPE_PREFIX,
	"host": lgv1.Scope_SCOPE_HOST, "domain": lgv1.Scope_SCOPE_DOMAIN,
}

// linkTypeNames lists the --types values in enum order.
func linkTypeNames() []string {
	var names []string
	vals := lgv1.LinkType(0).Descriptor().Values()
	for i := 1; i < vals.Len(); i++ {
		names = append(names, linkTypeName(lgv1.LinkType(vals.Get(i).Number())))
	}
	return names
}

// check validates the flags and returns the scope and filter they ask for,
// reporting every bad flag at once.
func (f *queryFlags) check() (lgv1.Scope, *lgv1.Filter, error) {
	var errs []error
	if !formats[f.format] {
		errs = append(errs, fmt.Errorf("--format %q: use table, tsv, csv or json", f.format))
	}
	if f.limit < 0 {
		errs = append(errs, fmt.Errorf("--limit %d: must not be negative", f.limit))
	}
	if f.size < 0 || f.size > indexer.MaxPageSize {
		errs = append(errs, fmt.Errorf("--page-size %d: use 1..%d", f.size, indexer.MaxPageSize))
	}
	sc, flt := f.selection(&errs)
	if len(errs) > 0 {
		return 0, nil, usageError{errors.Join(errs...)}
	}
	return sc, flt, nil
}

// selection validates the flags of registerSelection, adding what is
// wrong to errs, and returns the scope and filter they ask for.
func (f *queryFlags) selection(errs *[]error) (lgv1.Scope, *lgv1.Filter) {
	if f.data != "" && f.server != "" {
		*errs = append(*errs, errors.New("give --data or --server, not both"))
	}
	if f.server == "" && (f.tokenFile != "" || f.tls || f.tlsCA != "" || f.insecure) {
		*errs = append(*errs, errors.New("--token-file, --tls, --tls-ca and --insecure need --server"))
	}
	var sc lgv1.Scope
	if f.withScope {
		var ok bool
		if sc, ok = scopeNames[f.scope]; !ok {
			*errs = append(*errs, fmt.Errorf("--scope %q: use url, prefix, host or domain", f.scope))
		}
	}
	flt := &lgv1.Filter{FollowOnly: f.followOnly, AnchorContains: f.anchorContains, IncludeLost: f.includeLost, MinAuthority: int32(f.minAuthority)}
	if f.minAuthority < 0 || f.minAuthority > 100 {
		*errs = append(*errs, fmt.Errorf("--min-authority %d: use 0..100", f.minAuthority))
	}
	if f.types != "" {
		var bad []string
		for _, name := range strings.Split(f.types, ",") {
			n, ok := apiserver.EnumName(lgv1.LinkType(0).Descriptor(), name)
			if !ok || n == lgv1.LinkType_LINK_TYPE_UNSPECIFIED.String() {
				if !slices.Contains(bad, name) {
					bad = append(bad, name)
					*errs = append(*errs, fmt.Errorf("--types: unknown link type %q: use %s", name, strings.Join(linkTypeNames(), ", ")))
				}
				continue
			}
			flt.Types = append(flt.Types, lgv1.LinkType(lgv1.LinkType_value[n]))
		}
	}
	switch f.internal {
	case "":
	case "include":
		flt.Internal = lgv1.InternalLinks_INTERNAL_LINKS_INCLUDE
	case "exclude":
		flt.Internal = lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE
	default:
		*errs = append(*errs, fmt.Errorf("--internal %q: use include or exclude", f.internal))
	}
	timeFlag := func(name, v string) *timestamppb.Timestamp {
		if v == "" {
			return nil
		}
		t, err := apiserver.ParseTime(v)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("--%s: %w", name, err))
			return nil
		}
		return timestamppb.New(t)
	}
	flt.FirstSeenFrom, flt.FirstSeenTo = timeFlag("first-seen-from", f.firstFrom), timeFlag("first-seen-to", f.firstTo)
	flt.LastSeenFrom, flt.LastSeenTo = timeFlag("last-seen-from", f.lastFrom), timeFlag("last-seen-to", f.lastTo)
	flt.LostFrom, flt.LostTo = timeFlag("lost-from", f.lostFrom), timeFlag("lost-to", f.lostTo)
	switch f.state {
	case "":
	case "live", "lost", "all":
		flt.State = lgv1.LinkState(lgv1.LinkState_value["LINK_STATE_"+strings.ToUpper(f.state)])
		if f.includeLost && f.state != "all" {
			*errs = append(*errs, fmt.Errorf("--include-lost contradicts --state %s", f.state))
		}
	default:
		*errs = append(*errs, fmt.Errorf("--state %q: use live, lost or all", f.state))
	}
	for _, r := range []struct {
		name     string
		from, to *timestamppb.Timestamp
	}{{"first-seen", flt.FirstSeenFrom, flt.FirstSeenTo}, {"last-seen", flt.LastSeenFrom, flt.LastSeenTo}, {"lost", flt.LostFrom, flt.LostTo}} {
		if r.from != nil && r.to != nil && !r.from.AsTime().Before(r.to.AsTime()) {
			*errs = append(*errs, fmt.Errorf("--%s-from is not before --%s-to: the range is empty", r.name, r.name))
		}
	}
	return sc, flt
}

// open returns the API to ask, in process on --data or remote on --server,
// and a function that releases it.
func (f *queryFlags) open() (queryAPI, func(), error) {
	if f.server != "" {
		cfg := apiserver.ClientConfig{TLS: f.tls, CAFile: f.tlsCA, InsecureSkipVerify: f.insecure}
		if f.tokenFile != "" {
			tok, err := apiserver.LoadToken(f.tokenFile)
			if err != nil {
				return nil, nil, usagef("--token-file: %w", err)
			}
			cfg.Token = tok
		}
		conn, err := apiserver.Dial(f.server, cfg)
		if err != nil {
			return nil, nil, usagef("--server %q: %w", f.server, err)
		}
		return remoteAPI{lgv1.NewLinkGraphServiceClient(conn)}, func() { conn.Close() }, nil
	}
	db, ix, err := openIndex(cmp.Or(f.data, DefaultDataDir))
	if err != nil {
		return nil, nil, err
	}
	return &indexer.GRPCServer{Index: ix}, func() { db.Close() }, nil
}

// openIndex opens the index in a data directory for a command that reads
// it in process. Close the DB. Its block cache is the smallest default: a
// command answers once, or scans (export), and a larger cache would only
// hold more of what it has read.
func openIndex(dir string) (*store.DB, *indexer.Index, error) {
	db, err := store.OpenWith(dir, store.Options{MustExist: true, CacheSize: store.MinDefaultCacheSize})
	if err != nil {
		if errors.Is(err, store.ErrNoIndex) {
			return nil, nil, usagef("--data: %w", err)
		}
		if errors.Is(err, store.ErrLocked) {
			return nil, nil, fmt.Errorf("%w; while a crawl or server runs on it, ask that process with --server ADDR", err)
		}
		return nil, nil, err
	}
	shards, err := db.Shards(0, bus.DefaultShards)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, indexer.New(db, shards), nil
}

// pageSize is the page size to ask for: --page-size, else the whole
// --limit when it fits in one page, else the largest page, to make as few
// round trips as possible. It stays the same for every page of a query.
func (f *queryFlags) pageSize() int32 {
	if f.size > 0 {
		return int32(f.size)
	}
	if f.limit > 0 && f.limit < indexer.MaxPageSize {
		return int32(f.limit)
	}
	return indexer.MaxPageSize
}

// pageThrough asks for pages, following next_page_token, and passes each
// row to emit until the last page or limit rows (0: no limit).
func pageThrough[T any](ctx context.Context, limit int, fetch func(ctx context.Context, token string) (rows []T, next string, err error), emit func(T) error) error {
	token, n := "", 0
	for {
		rows, next, err := fetch(ctx, token)
		if err != nil {
			return callError(err)
		}
		for _, r := range rows {
			if limit > 0 && n == limit {
				return nil
			}
			if err := emit(r); err != nil {
				return err
			}
			n++
		}
		if next == "" || (limit > 0 && n == limit) {
			return nil
		}
		token = next
	}
}

// rpcError is a failed call, printed as the server's message and code.
type rpcError struct{ st *status.Status }

func (e rpcError) Error() string {
	if e.st.Code() == codes.InvalidArgument {
		return e.st.Message()
	}
	return fmt.Sprintf("%s (%s)", e.st.Message(), e.st.Code())
}

func (e rpcError) GRPCStatus() *status.Status { return e.st }

// callError maps a failed call to the command's error: InvalidArgument is
// the caller's mistake (exit 2), anything else a runtime failure (exit 1).
func callError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.InvalidArgument {
		return usageError{rpcError{st}}
	}
	return rpcError{st}
}

// targetArg names the positional argument of the query commands but
// outlinks in their usage errors.
const targetArg = "TARGET (a URL, or a host/domain with --scope)"

// parse parses a query command's flags and its one positional argument
// (what names it in the usage error) and checks the flags.
func (f *queryFlags) parse(fs *flag.FlagSet, args []string, what string) (target string, scope lgv1.Scope, filter *lgv1.Filter, err error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", 0, nil, err
	}
	if len(pos) != 1 {
		return "", 0, nil, usagef("give exactly one %s", what)
	}
	scope, filter, err = f.check()
	return pos[0], scope, filter, err
}

// listRows opens the command's API and writes the rows fetch pages
// through, up to --limit, in --format.
func listRows[T any](ctx context.Context, f *queryFlags, stdout io.Writer, none string, cols []column[T], fetch func(ctx context.Context, api queryAPI, token string) ([]T, string, error)) error {
	api, closeAPI, err := f.open()
	if err != nil {
		return err
	}
	defer closeAPI()
	out := newRowWriter(f.format, stdout, none, cols)
	err = pageThrough(ctx, f.limit, func(ctx context.Context, token string) ([]T, string, error) {
		return fetch(ctx, api, token)
	}, out.Write)
	if err != nil {
		return err
	}
	return out.Flush()
}

// timeString formats a timestamp for TSV, CSV and JSON-less output: RFC
// 3339 in UTC, empty when unset.
func timeString(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}

// tableTime formats a timestamp for tables, "-" when unset.
func tableTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.DateTime)
}
