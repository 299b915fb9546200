package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/linkrow"
)

type backlinksCmd struct{}

func (*backlinksCmd) name() string     { return "backlinks" }
func (*backlinksCmd) synopsis() string { return "list the links to a URL, URL prefix, host or domain" }

// backlinkColumns are the columns of backlinks and outlinks. The TSV/CSV
// order is kept stable for scripts: new columns go at the end.
var backlinkColumns = []column[*lgv1.Backlink]{
	{name: "source_url", title: "SOURCE", value: (*lgv1.Backlink).GetSourceUrl, table: (*lgv1.Backlink).GetSourceUrl},
	{name: "target_url", title: "TARGET", value: (*lgv1.Backlink).GetTargetUrl, table: (*lgv1.Backlink).GetTargetUrl},
	{name: "anchor_text", title: "ANCHOR", value: (*lgv1.Backlink).GetAnchorText,
		table: func(b *lgv1.Backlink) string { return orDash(truncate(b.AnchorText, 60)) }},
	{name: "rel", value: func(b *lgv1.Backlink) string { return strings.Join(b.Rel, " ") },
		table: func(b *lgv1.Backlink) string { return orDash(strings.Join(b.Rel, " ")) }},
	{name: "type", value: func(b *lgv1.Backlink) string { return linkTypeName(b.Type) },
		table: func(b *lgv1.Backlink) string { return linkTypeName(b.Type) }},
	{name: "redirect_status", value: func(b *lgv1.Backlink) string { return fmt.Sprint(b.RedirectStatus) }},
	{name: "nofollow", value: func(b *lgv1.Backlink) string { return fmt.Sprint(b.Nofollow) }},
	{name: "first_seen", value: func(b *lgv1.Backlink) string { return timeString(b.FirstSeen) },
		table: func(b *lgv1.Backlink) string { return tableTime(b.FirstSeen) }},
	{name: "last_seen", value: func(b *lgv1.Backlink) string { return timeString(b.LastSeen) },
		table: func(b *lgv1.Backlink) string { return tableTime(b.LastSeen) }},
	{name: "source_title", value: (*lgv1.Backlink).GetSourceTitle},
	{name: "source_status", value: func(b *lgv1.Backlink) string { return fmt.Sprint(b.SourceStatus) }},
	{name: "lost_at", value: func(b *lgv1.Backlink) string { return timeString(b.LostAt) },
		table: func(b *lgv1.Backlink) string {
			if b.LostAt == nil {
				return ""
			}
			return tableTime(b.LostAt)
		}},
	{name: "lost_reason", title: "WHY LOST", value: func(b *lgv1.Backlink) string { return linkrow.ReasonName(b.LostReason) },
		table: func(b *lgv1.Backlink) string { return linkrow.ReasonName(b.LostReason) }},
	{name: "source_authority", title: "AUTH", value: func(b *lgv1.Backlink) string { return fmt.Sprint(b.SourceAuthority) },
		table: func(b *lgv1.Backlink) string { return fmt.Sprint(b.SourceAuthority) }},
	{name: "source_page_authority", value: func(b *lgv1.Backlink) string { return fmt.Sprint(b.SourcePageAuthority) }},
	{name: "history", value: func(b *lgv1.Backlink) string { return linkrow.History(b.History) }},
}

// tsvColumns is the header of --format tsv and csv for backlinks and
// outlinks, in order.
var tsvColumns = func() []string {
	var names []string
	for _, c := range backlinkColumns {
		names = append(names, c.name)
	}
	return names
}()

// linkTypeName is the short lowercase name of a link type ("a", "img",
// "meta_refresh", ...), as used in TSV, tables and flags.
func linkTypeName(t lgv1.LinkType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "LINK_TYPE_"))
}

var orderNames = map[string]lgv1.BacklinkOrder{
	"target":        lgv1.BacklinkOrder_BACKLINK_ORDER_UNSPECIFIED,
	"first_seen":    lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN,
	"last_seen":     lgv1.BacklinkOrder_BACKLINK_ORDER_LAST_SEEN,
	"source_domain": lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_DOMAIN,
	"lost_at":       lgv1.BacklinkOrder_BACKLINK_ORDER_LOST_AT,
	"authority":     lgv1.BacklinkOrder_BACKLINK_ORDER_SOURCE_AUTHORITY,
}

func (c *backlinksCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backlinks", "backlinks [--data DIR | --server ADDR] [flags] TARGET", stderr)
	var f queryFlags
	f.register(fs, true, true)
	order := fs.String("order", "target", "sort by target (target URL, then source URL, in SURT order; the fastest), first_seen, last_seen, source_domain, lost_at or authority (of the source's domain)")
	desc := fs.Bool("desc", false, "newest first for the time orders, strongest first for authority, reverse order otherwise")
	onePerDomain := fs.Bool("one-per-domain", false, "keep one link per referring domain, the first in the order")
	target, scope, filter, err := f.parse(fs, args, targetArg)
	if err != nil {
		return err
	}
	ord, ok := orderNames[*order]
	if !ok {
		return usagef("--order %q: use target, first_seen, last_seen, source_domain, lost_at or authority", *order)
	}
	req := &lgv1.BacklinksRequest{Target: target, Scope: scope, Filter: filter, PageSize: f.pageSize(),
		OrderBy: ord, Descending: *desc, OnePerDomain: *onePerDomain}
	return listRows(ctx, &f, stdout, "no backlinks found", backlinkColumns, func(ctx context.Context, api queryAPI, token string) ([]*lgv1.Backlink, string, error) {
		req.PageToken = token
		res, err := api.Backlinks(ctx, req)
		return res.GetBacklinks(), res.GetNextPageToken(), err
	})
}

type outlinksCmd struct{}

func (*outlinksCmd) name() string     { return "outlinks" }
func (*outlinksCmd) synopsis() string { return "list the links of one page from its latest crawl" }

func (c *outlinksCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outlinks", "outlinks [--data DIR | --server ADDR] [flags] URL", stderr)
	f := queryFlags{latestOnly: true}
	f.register(fs, false, true)
	source, _, filter, err := f.parse(fs, args, "URL (the source page)")
	if err != nil {
		return err
	}
	req := &lgv1.OutlinksRequest{Source: source, Filter: filter, PageSize: f.pageSize()}
	return listRows(ctx, &f, stdout, "no outlinks found", backlinkColumns, func(ctx context.Context, api queryAPI, token string) ([]*lgv1.Backlink, string, error) {
		req.PageToken = token
		res, err := api.Outlinks(ctx, req)
		return res.GetLinks(), res.GetNextPageToken(), err
	})
}
