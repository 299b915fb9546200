package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/indexer"
	"github.com/linkgraph/linkgraph/internal/bus"
	"github.com/linkgraph/linkgraph/internal/store"
)

type backlinksCmd struct{}

func (*backlinksCmd) name() string     { return "backlinks" }
func (*backlinksCmd) synopsis() string { return "list the pages that link to a URL, host or domain" }

// tsvColumns is the header of --format tsv, in order.
var tsvColumns = []string{"source_url", "target_url", "anchor_text", "rel", "type", "redirect_status", "nofollow", "first_seen", "last_seen", "source_title", "source_status"}

func (c *backlinksCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backlinks", "backlinks [--data DIR | --server ADDR] [flags] TARGET", stderr)
	data := fs.String("data", "", "read the index in this data directory (default "+DefaultDataDir+" unless --server is given)")
	server := fs.String("server", "", "ask the linkgraph server at this gRPC address (host:port)")
	format := fs.String("format", "table", "output format: table, tsv or json (one object per line)")
	scope := fs.String("scope", "url", "what TARGET names: url (exactly), host or domain (all subdomains)")
	limit := fs.Int("limit", 0, "print at most this many backlinks (0: all)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one TARGET (a URL, or a host/domain with --scope)")
	}
	sc, ok := map[string]lgv1.Scope{"url": lgv1.Scope_SCOPE_URL, "host": lgv1.Scope_SCOPE_HOST, "domain": lgv1.Scope_SCOPE_DOMAIN}[*scope]
	if !ok {
		return usagef("--scope %q: use url, host or domain", *scope)
	}
	if *format != "table" && *format != "tsv" && *format != "json" {
		return usagef("--format %q: use table, tsv or json", *format)
	}
	if *data != "" && *server != "" {
		return usagef("give --data or --server, not both")
	}
	if *limit < 0 {
		return usagef("--limit %d: must not be negative", *limit)
	}

	var fetch func(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error)
	if *server != "" {
		conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return usagef("--server %q: %v", *server, err)
		}
		defer conn.Close()
		client := lgv1.NewLinkGraphServiceClient(conn)
		fetch = func(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error) {
			return client.Backlinks(ctx, req)
		}
	} else {
		if *data == "" {
			*data = DefaultDataDir
		}
		db, err := store.Open(*data)
		if err != nil {
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("%w; while a crawl or server runs on it, ask that process with --server ADDR", err)
			}
			return err
		}
		defer db.Close()
		shards, err := db.Shards(0, bus.DefaultShards)
		if err != nil {
			return err
		}
		ix := indexer.New(db, shards)
		fetch = func(ctx context.Context, req *lgv1.BacklinksRequest) (*lgv1.BacklinksResponse, error) {
			page, err := ix.Backlinks(ctx, indexer.Query{Target: req.Target, Scope: req.Scope, PageSize: int(req.PageSize), PageToken: req.PageToken})
			if err != nil {
				return nil, err
			}
			return &lgv1.BacklinksResponse{Backlinks: page.Backlinks, NextPageToken: page.NextPageToken}, nil
		}
	}

	out := newBacklinkWriter(*format, stdout)
	req := &lgv1.BacklinksRequest{Target: pos[0], Scope: sc, PageSize: indexer.MaxPageSize}
	n := 0
	for {
		resp, err := fetch(ctx, req)
		if err != nil {
			if errors.Is(err, indexer.ErrInvalidArgument) {
				return usageError{err}
			}
			return err
		}
		for _, b := range resp.Backlinks {
			if *limit > 0 && n == *limit {
				return out.Flush()
			}
			if err := out.Write(b); err != nil {
				return err
			}
			n++
		}
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	return out.Flush()
}

type backlinkWriter struct {
	format string
	w      io.Writer
	tw     *tabwriter.Writer
	header bool
}

func newBacklinkWriter(format string, w io.Writer) *backlinkWriter {
	bw := &backlinkWriter{format: format, w: w}
	if format == "table" {
		bw.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	}
	return bw
}

// LinkTypeName is the short lowercase name of a link type ("a", "img",
// "redirect", ...), as used in TSV, tables and flags.
func linkTypeName(t lgv1.LinkType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "LINK_TYPE_"))
}

func (bw *backlinkWriter) Write(b *lgv1.Backlink) error {
	switch bw.format {
	case "json":
		raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
		if err != nil {
			return err
		}
		// protojson may add spaces at random; compact it to one line.
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err = bw.w.Write(buf.Bytes())
		return err
	case "tsv":
		if !bw.header {
			bw.header = true
			if _, err := fmt.Fprintln(bw.w, strings.Join(tsvColumns, "\t")); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintln(bw.w, strings.Join([]string{
			b.SourceUrl, b.TargetUrl, tsvField(b.AnchorText), strings.Join(b.Rel, " "), linkTypeName(b.Type),
			fmt.Sprint(b.RedirectStatus), fmt.Sprint(b.Nofollow), rfc3339(b.FirstSeen.AsTime()), rfc3339(b.LastSeen.AsTime()),
			tsvField(b.SourceTitle), fmt.Sprint(b.SourceStatus),
		}, "\t"))
		return err
	default:
		if !bw.header {
			bw.header = true
			fmt.Fprintln(bw.tw, "SOURCE\tTYPE\tREL\tANCHOR\tTARGET\tLAST SEEN")
		}
		anchor := b.AnchorText
		if len(anchor) > 60 {
			anchor = anchor[:57] + "..."
		}
		_, err := fmt.Fprintf(bw.tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.SourceUrl, linkTypeName(b.Type), orDash(strings.Join(b.Rel, " ")), orDash(anchor), b.TargetUrl, b.LastSeen.AsTime().UTC().Format(time.DateTime))
		return err
	}
}

func (bw *backlinkWriter) Flush() error {
	if bw.tw != nil {
		if !bw.header {
			fmt.Fprintln(bw.w, "no backlinks found")
			return nil
		}
		return bw.tw.Flush()
	}
	return nil
}

func tsvField(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
