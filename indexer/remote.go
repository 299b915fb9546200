package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/urlnorm"
)

// In a cluster, each shard node answers the queries about its shards on
// NATS request/reply, as a nats.go/micro service (so `nats micro ls` and
// `nats micro stats linkgraph-shard` show the nodes and their load), and
// gateways forward the public API to the owning node. A request goes to
// linkgraph.q.<shard>, names its method in a header and carries the
// protobuf request; the reply is the protobuf response, or a gRPC status in
// micro's error headers.

// QueryServiceName is the micro service name of the shard nodes.
const QueryServiceName = "linkgraph-shard"

// querySubject is the subject on which the node owning shard answers.
func querySubject(shard int) string { return "linkgraph.q." + strconv.Itoa(shard) }

const (
	headerMethod  = "Linkgraph-Method"
	headerTimeout = "Linkgraph-Timeout-Ms"

	// Methods besides the unary ones of LinkGraphService.
	methodRange      = "_Range"      // -> ShardRange of the node
	methodExportPage = "_ExportPage" // ExportRequest -> one ExportBatch
	methodLookup     = "_Lookup"     // KeyLookup -> KeyValues
	methodSources    = "_Sources"    // RecrawlRequest -> URLList of the target's source pages
	methodRevisitNow = "_RevisitNow" // URLList -> RecrawlResponse: queue these pages now
	methodHostLinks  = "_HostLinks"  // HostLinksRequest -> HostLinksPage, for a ranking
	methodPutRanks   = "_PutRanks"   // RankBatch -> empty RankBatch: store part of a ranking

	// exportPageBytes caps one exported batch on NATS: a server's default
	// max_payload is 1 MiB.
	exportPageBytes = 512 << 10

	// maxConcurrentQueries bounds the queries one node answers at once;
	// more wait in their subscription's pending buffer.
	maxConcurrentQueries = 64
)

// DefaultQueryTimeout bounds a forwarded query whose caller set no deadline.
const DefaultQueryTimeout = 30 * time.Second

// QueryService answers the queries about shards [lo, hi) over NATS. Create
// with ServeQueries; Stop it before closing the index.
type QueryService struct {
	srv    *GRPCServer
	nc     *nats.Conn
	svc    micro.Service
	lo, hi int
	log    *slog.Logger

	// revisitNow, if set, queues pages of the node's shards for a fetch
	// now (the frontier's RevisitNow), for Recrawl.
	revisitNow func(ctx context.Context, urls []string) error

	ctx    context.Context // canceled by Stop
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup // queries in flight
}

// ServeQueries starts answering the queries about shards [lo, hi) of ix on
// nc. It also lets ix's Outlinks read the edges other nodes own.
// revisitNow, if not nil, queues pages of these shards for a fetch now, so
// that the node takes part in Recrawl.
func ServeQueries(nc *nats.Conn, ix *Index, lo, hi int, version string, revisitNow func(ctx context.Context, urls []string) error, log *slog.Logger) (*QueryService, error) {
	ctx, cancel := context.WithCancel(context.Background())
	q := &QueryService{
		srv: &GRPCServer{Index: ix}, nc: nc, lo: lo, hi: hi, log: log, revisitNow: revisitNow,
		ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxConcurrentQueries),
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        QueryServiceName,
		Version:     version,
		Description: "linkgraph shard node: backlink queries of its shards",
		Metadata:    map[string]string{"shards": fmt.Sprintf("%d-%d", lo, hi-1)},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("indexer: cannot start the query service: %w", err)
	}
	q.svc = svc
	ix.remote = &remoteEdges{nc: nc, lo: lo, hi: hi} // before the first query can come
	for s := lo; s < hi; s++ {
		err := svc.AddEndpoint("shard-"+strconv.Itoa(s), micro.HandlerFunc(q.handle), micro.WithEndpointSubject(querySubject(s)))
		if err != nil {
			q.Stop()
			return nil, fmt.Errorf("indexer: cannot serve shard %d: %w", s, err)
		}
	}
	return q, nil
}

// Stop stops taking queries, cancels those in flight and waits for them.
func (q *QueryService) Stop() error {
	err := q.svc.Stop()
	q.cancel()
	q.wg.Wait()
	return err
}

// handle runs on the endpoint's subscription; the query itself runs on its
// own goroutine so that a slow one (an export batch) does not hold up the
// shard's other queries. It replies on the connection rather than through
// req, which micro reads after handle returns.
func (q *QueryService) handle(req micro.Request) {
	select {
	case q.sem <- struct{}{}:
	case <-q.ctx.Done():
		return // stopping: the caller times out or retries elsewhere
	}
	method, reply := req.Headers().Get(headerMethod), req.Reply()
	data := req.Data()
	timeout := DefaultQueryTimeout
	if ms, err := strconv.ParseInt(req.Headers().Get(headerTimeout), 10, 64); err == nil && ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	q.wg.Add(1)
	go func() {
		// Owned by q: Stop cancels q.ctx and waits on q.wg.
		defer q.wg.Done()
		defer func() { <-q.sem }()
		ctx, cancel := context.WithTimeout(q.ctx, timeout)
		defer cancel()
		resp, err := q.dispatch(ctx, method, data)
		msg := nats.NewMsg(reply)
		if err != nil {
			st := status.Convert(toStatus(err))
			msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(int(st.Code())))
			msg.Header.Set(micro.ErrorHeader, st.Message())
		} else if msg.Data, err = proto.Marshal(resp); err != nil {
			msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(int(codes.Internal)))
			msg.Header.Set(micro.ErrorHeader, err.Error())
		}
		if err := q.nc.PublishMsg(msg); err != nil {
			q.log.Warn("cannot reply to a query", "method", method, "err", err)
		}
	}()
}

// dispatch runs one query: a unary method of LinkGraphService by name, or
// one of the node-to-node methods.
func (q *QueryService) dispatch(ctx context.Context, method string, data []byte) (proto.Message, error) {
	dec := func(m any) error { return proto.Unmarshal(data, m.(proto.Message)) }
	switch method {
	case methodRange:
		return &lgv1.ShardRange{Lo: int32(q.lo), Hi: int32(q.hi)}, nil
	case methodExportPage:
		req := &lgv1.ExportRequest{}
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad export request: %v", err)
		}
		out := &lgv1.ExportBatch{}
		err := q.srv.exportBatches(ctx, req, exportPageBytes, func(b *lgv1.ExportBatch) error {
			out = b
			return errPageFull
		})
		if err != nil && !errors.Is(err, errPageFull) {
			return nil, err
		}
		return out, nil
	case methodSources:
		req := &lgv1.RecrawlRequest{}
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad recrawl request: %v", err)
		}
		urls, truncated, err := q.srv.Index.Sources(ctx, req.GetTarget(), req.GetScope(), int(req.GetMaxSources()))
		if err != nil {
			return nil, err
		}
		return &lgv1.URLList{Urls: urls, Truncated: truncated}, nil
	case methodRevisitNow:
		req := &lgv1.URLList{}
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad URL list: %v", err)
		}
		if q.revisitNow == nil {
			return nil, status.Error(codes.Unimplemented, "this node does not queue fetches")
		}
		if err := q.revisitNow(ctx, req.GetUrls()); err != nil {
			return nil, err
		}
		return &lgv1.RecrawlResponse{Queued: int64(len(req.GetUrls()))}, nil
	case methodHostLinks:
		req := &lgv1.HostLinksRequest{}
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad host links request: %v", err)
		}
		return q.srv.Index.hostLinksPage(ctx, req.GetAfter())
	case methodPutRanks:
		req := &lgv1.RankBatch{}
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad rank batch: %v", err)
		}
		return &lgv1.RankBatch{}, q.srv.Index.putRanks(req)
	case methodLookup:
		req := &lgv1.KeyLookup{}
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad key lookup: %v", err)
		}
		return q.srv.Index.lookup(req.GetKeys())
	}
	for _, m := range lgv1.LinkGraphService_ServiceDesc.Methods {
		if m.MethodName == method {
			resp, err := m.Handler(q.srv, ctx, dec, nil)
			if err != nil {
				return nil, err
			}
			return resp.(proto.Message), nil
		}
	}
	return nil, status.Errorf(codes.Unimplemented, "unknown method %q (a gateway of another version?)", method)
}

var errPageFull = errors.New("export page full")

// lookup returns the edges link prefixes name (see linkPrefix), for
// another node's Outlinks.
func (ix *Index) lookup(keys [][]byte) (*lgv1.KeyValues, error) {
	out := &lgv1.KeyValues{}
	snap := ix.db.NewSnapshot()
	defer snap.Close()
	le := ix.linkEdges(snap)
	defer le.close()
	for i, k := range keys {
		edges, err := le.get(k)
		if err != nil {
			return nil, err
		}
		for _, e := range edges {
			// Rebased to 0: the asking node has not the source's record.
			v, err := decodeEdgeValue(e.value, e.base)
			if err != nil {
				return nil, fmt.Errorf("%w (link prefix %q)", err, k)
			}
			out.Of = append(out.Of, int32(i))
			out.Suffixes = append(out.Suffixes, e.suffix)
			out.Values = append(out.Values, v.encode(nil, 0))
		}
	}
	return out, nil
}

// remoteEdges reads edges owned by other nodes, for Outlinks: a page's
// forward list is on the page's node, its links' edges on their targets'.
type remoteEdges struct {
	nc     *nats.Conn
	lo, hi int
}

func (r *remoteEdges) owns(shard int) bool { return shard >= r.lo && shard < r.hi }

func (r *remoteEdges) get(ctx context.Context, shard int, keys [][]byte) (*lgv1.KeyValues, error) {
	out := &lgv1.KeyValues{}
	if err := request(ctx, r.nc, shard, methodLookup, &lgv1.KeyLookup{Keys: keys}, out); err != nil {
		return nil, err
	}
	n := len(out.GetValues())
	if len(out.GetOf()) != n || len(out.GetSuffixes()) != n {
		return nil, fmt.Errorf("indexer: shard %d answered %d values, %d key indexes and %d key suffixes", shard, n, len(out.GetOf()), len(out.GetSuffixes()))
	}
	for i, of := range out.GetOf() {
		if of < 0 || int(of) >= len(keys) || len(out.GetSuffixes()[i]) == 0 {
			return nil, fmt.Errorf("indexer: shard %d answered a malformed edge for key %d of %d", shard, of, len(keys))
		}
	}
	return out, nil
}

// request sends one query to the node owning shard and decodes its answer
// into resp. Errors are gRPC statuses: the node's, Unavailable when no node
// serves the shard, DeadlineExceeded when it does not answer in time.
func request(ctx context.Context, nc *nats.Conn, shard int, method string, req, resp proto.Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultQueryTimeout)
		defer cancel()
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return status.Errorf(codes.Internal, "cannot encode request: %v", err)
	}
	msg := nats.NewMsg(querySubject(shard))
	msg.Data = data
	msg.Header.Set(headerMethod, method)
	if dl, ok := ctx.Deadline(); ok {
		msg.Header.Set(headerTimeout, strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10))
	}
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return status.Errorf(codes.Unavailable, "no shard node serves shard %d (down, restarting, or not started); try again", shard)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return status.Errorf(codes.DeadlineExceeded, "shard %d did not answer in time", shard)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case err != nil:
		return status.Errorf(codes.Unavailable, "cannot ask shard %d: %v", shard, err)
	}
	if c := reply.Header.Get(micro.ErrorCodeHeader); c != "" {
		code, err := strconv.Atoi(c)
		if err != nil {
			code = int(codes.Unknown)
		}
		return status.Error(codes.Code(code), reply.Header.Get(micro.ErrorHeader))
	}
	if err := proto.Unmarshal(reply.Data, resp); err != nil {
		return status.Errorf(codes.Internal, "shard %d sent a bad answer: %v", shard, err)
	}
	return nil
}

// Gateway serves LinkGraphService for a cluster by forwarding each query to
// the node owning its target's shard (one node: targets are sharded by
// registrable domain, so even domain-level answers are single-shard).
// Exports of the whole index visit the nodes one after the other.
type Gateway struct {
	lgv1.UnimplementedLinkGraphServiceServer
	nc     *nats.Conn
	shards int
	rankMu sync.Mutex // held by the ranking running, if any
}

var _ lgv1.LinkGraphServiceServer = (*Gateway)(nil)

// NewGateway returns a gateway for a cluster of shards shards over nc.
func NewGateway(nc *nats.Conn, shards int) *Gateway {
	return &Gateway{nc: nc, shards: shards}
}

// shardOf returns the shard owning the backlinks of target in scope.
func (g *Gateway) shardOf(target string, scope lgv1.Scope) (int, error) {
	sel, err := newSelection(target, scope, nil)
	if err != nil {
		return 0, toStatus(err)
	}
	host := sel.target
	if sel.scope == lgv1.Scope_SCOPE_URL || sel.scope == lgv1.Scope_SCOPE_PREFIX {
		host = urlnorm.Host(host)
	}
	return urlnorm.Shard(host, g.shards), nil
}

func forward[Resp any, PResp interface {
	*Resp
	proto.Message
}](ctx context.Context, g *Gateway, target string, scope lgv1.Scope, method string, req proto.Message) (PResp, error) {
	shard, err := g.shardOf(target, scope)
	if err != nil {
		return nil, err
	}
	resp := PResp(new(Resp))
	if err := request(ctx, g.nc, shard, method, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Backlinks implements lgv1.LinkGraphServiceServer.
func (g *Gateway) Backlinks(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error) {
	return forward[lgv1.BacklinksResponse](ctx, g, req.GetTarget(), req.GetScope(), "Backlinks", req)
}

// ReferringDomains implements lgv1.LinkGraphServiceServer.
func (g *Gateway) ReferringDomains(ctx context.Context, req *lgv1.ReferringDomainsRequest) (*lgv1.ReferringDomainsResponse, error) {
	return forward[lgv1.ReferringDomainsResponse](ctx, g, req.GetTarget(), req.GetScope(), "ReferringDomains", req)
}

// Anchors implements lgv1.LinkGraphServiceServer.
func (g *Gateway) Anchors(ctx context.Context, req *lgv1.AnchorsRequest) (*lgv1.AnchorsResponse, error) {
	return forward[lgv1.AnchorsResponse](ctx, g, req.GetTarget(), req.GetScope(), "Anchors", req)
}

// Summary implements lgv1.LinkGraphServiceServer.
func (g *Gateway) Summary(ctx context.Context, req *lgv1.SummaryRequest) (*lgv1.SummaryResponse, error) {
	return forward[lgv1.SummaryResponse](ctx, g, req.GetTarget(), req.GetScope(), "Summary", req)
}

// Outlinks implements lgv1.LinkGraphServiceServer: the source page's node
// answers, asking the nodes of its links' targets for their edges.
func (g *Gateway) Outlinks(ctx context.Context, req *lgv1.OutlinksRequest) (*lgv1.OutlinksResponse, error) {
	return forward[lgv1.OutlinksResponse](ctx, g, req.GetSource(), lgv1.Scope_SCOPE_URL, "Outlinks", req)
}

// NewLinks implements lgv1.LinkGraphServiceServer.
func (g *Gateway) NewLinks(ctx context.Context, req *lgv1.LinkChangesRequest) (*lgv1.BacklinksResponse, error) {
	return forward[lgv1.BacklinksResponse](ctx, g, req.GetTarget(), req.GetScope(), "NewLinks", req)
}

// LostLinks implements lgv1.LinkGraphServiceServer.
func (g *Gateway) LostLinks(ctx context.Context, req *lgv1.LinkChangesRequest) (*lgv1.BacklinksResponse, error) {
	return forward[lgv1.BacklinksResponse](ctx, g, req.GetTarget(), req.GetScope(), "LostLinks", req)
}

// Velocity implements lgv1.LinkGraphServiceServer.
func (g *Gateway) Velocity(ctx context.Context, req *lgv1.VelocityRequest) (*lgv1.VelocityResponse, error) {
	return forward[lgv1.VelocityResponse](ctx, g, req.GetTarget(), req.GetScope(), "Velocity", req)
}

// Recrawl implements lgv1.LinkGraphServiceServer: the target's node names
// the source pages, and the node of each source's shard queues it.
func (g *Gateway) Recrawl(ctx context.Context, req *lgv1.RecrawlRequest) (*lgv1.RecrawlResponse, error) {
	sources, err := forward[lgv1.URLList](ctx, g, req.GetTarget(), req.GetScope(), methodSources, req)
	if err != nil {
		return nil, err
	}
	byShard := make(map[int][]string)
	for _, u := range sources.GetUrls() {
		sh := urlnorm.Shard(urlnorm.Host(u), g.shards)
		byShard[sh] = append(byShard[sh], u)
	}
	out := &lgv1.RecrawlResponse{Truncated: sources.GetTruncated()}
	for sh, urls := range byShard {
		var r lgv1.RecrawlResponse
		if err := request(ctx, g.nc, sh, methodRevisitNow, &lgv1.URLList{Urls: urls}, &r); err != nil {
			return nil, err
		}
		out.Queued += r.GetQueued()
	}
	return out, nil
}

// StreamBacklinks implements lgv1.LinkGraphServiceServer.
func (g *Gateway) StreamBacklinks(req *lgv1.BacklinksRequest, stream grpc.ServerStreamingServer[lgv1.Backlink]) error {
	return streamBacklinks(g.Backlinks, req, stream)
}

// StreamReferringDomains implements lgv1.LinkGraphServiceServer.
func (g *Gateway) StreamReferringDomains(req *lgv1.ReferringDomainsRequest, stream grpc.ServerStreamingServer[lgv1.ReferringDomain]) error {
	return streamReferringDomains(g.ReferringDomains, req, stream)
}

// StreamAnchors implements lgv1.LinkGraphServiceServer.
func (g *Gateway) StreamAnchors(req *lgv1.AnchorsRequest, stream grpc.ServerStreamingServer[lgv1.Anchor]) error {
	return streamAnchors(g.Anchors, req, stream)
}

// gatewayTokenPrefix marks a gateway's export resume token: the first shard
// of the node being exported, then that node's own token.
const gatewayTokenPrefix = "n"

// Export implements lgv1.LinkGraphServiceServer. The links to a target come
// from its node; the whole index comes node by node in shard order. Each
// batch is read from its own snapshot, and its resume token continues after
// it, so a long export sees every row that exists throughout, once.
func (g *Gateway) Export(req *lgv1.ExportRequest, stream grpc.ServerStreamingServer[lgv1.ExportBatch]) error {
	ctx := stream.Context()
	if req.GetTarget() != "" {
		shard, err := g.shardOf(req.GetTarget(), req.GetScope())
		if err != nil {
			return err
		}
		return g.exportNode(ctx, shard, req, req.GetResumeToken(), stream, func(tok string) string { return tok })
	}
	first, inner := 0, ""
	if tok := req.GetResumeToken(); tok != "" {
		n, rest, ok := strings.Cut(strings.TrimPrefix(tok, gatewayTokenPrefix), ".")
		var err error
		first, err = strconv.Atoi(n)
		if !ok || !strings.HasPrefix(tok, gatewayTokenPrefix) || err != nil || first < 0 || first >= g.shards {
			return status.Error(codes.InvalidArgument, "resume_token is not from a whole-index export of this cluster; start again without it")
		}
		inner = rest
	}
	nodes, err := g.nodes(ctx, first)
	if err != nil {
		return err
	}
	for _, lo := range nodes {
		wrap := func(tok string) string { return fmt.Sprintf("%s%d.%s", gatewayTokenPrefix, lo, tok) }
		if err := g.exportNode(ctx, lo, req, inner, stream, wrap); err != nil {
			return err
		}
		inner = ""
	}
	return nil
}

// nodes returns the first shard of every node from shard from on, in shard
// order; from must be a node's first shard.
func (g *Gateway) nodes(ctx context.Context, from int) ([]int, error) {
	var firsts []int
	for shard := from; shard < g.shards; {
		var r lgv1.ShardRange
		if err := request(ctx, g.nc, shard, methodRange, &lgv1.ShardRange{}, &r); err != nil {
			return nil, err
		}
		if int(r.GetLo()) != shard || r.GetHi() <= r.GetLo() {
			return nil, status.Errorf(codes.FailedPrecondition, "shard %d is served by a node owning %d-%d: the shard layout has changed (an export resumes only on the same layout)", shard, r.GetLo(), r.GetHi()-1)
		}
		firsts = append(firsts, shard)
		shard = int(r.GetHi())
	}
	return firsts, nil
}

// exportNode sends the rows of the node owning shard, from token on, page
// by page; wrap turns a node's token into the one the client gets.
func (g *Gateway) exportNode(ctx context.Context, shard int, req *lgv1.ExportRequest, token string, stream grpc.ServerStreamingServer[lgv1.ExportBatch], wrap func(string) string) error {
	for {
		q := proto.CloneOf(req)
		q.ResumeToken = token
		var b lgv1.ExportBatch
		if err := request(ctx, g.nc, shard, methodExportPage, q, &b); err != nil {
			return err
		}
		if len(b.GetRows()) == 0 {
			return nil
		}
		token = b.GetResumeToken()
		b.ResumeToken = wrap(token)
		if err := stream.Send(&b); err != nil {
			return err
		}
	}
}
