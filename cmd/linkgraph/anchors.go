package main

import (
	"context"
	"fmt"
	"io"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

type anchorsCmd struct{}

func (*anchorsCmd) name() string { return "anchors" }
func (*anchorsCmd) synopsis() string {
	return "list the anchor texts of the links to a target, most backlinks first"
}

var anchorColumns = []column[*lgv1.Anchor]{
	{name: "anchor_text", title: "ANCHOR", value: (*lgv1.Anchor).GetAnchorText,
		table: func(a *lgv1.Anchor) string { return orDash(truncate(a.AnchorText, 80)) }},
	{name: "backlinks", value: func(a *lgv1.Anchor) string { return fmt.Sprint(a.Backlinks) },
		table: func(a *lgv1.Anchor) string { return fmt.Sprint(a.Backlinks) }},
	{name: "referring_domains", title: "DOMAINS", value: func(a *lgv1.Anchor) string { return fmt.Sprint(a.ReferringDomains) },
		table: func(a *lgv1.Anchor) string { return fmt.Sprint(a.ReferringDomains) }},
}

func (c *anchorsCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("anchors", "anchors [--data DIR | --server ADDR] [flags] TARGET", stderr)
	var f queryFlags
	f.register(fs, true, true)
	target, scope, filter, err := f.parse(fs, args, targetArg)
	if err != nil {
		return err
	}
	req := &lgv1.AnchorsRequest{Target: target, Scope: scope, Filter: filter, PageSize: f.pageSize()}
	return listRows(ctx, &f, stdout, "no anchors found", anchorColumns, func(ctx context.Context, api queryAPI, token string) ([]*lgv1.Anchor, string, error) {
		req.PageToken = token
		res, err := api.Anchors(ctx, req)
		return res.GetAnchors(), res.GetNextPageToken(), err
	})
}
