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
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	target, err := oneTarget(pos, "TARGET (a URL, or a host/domain with --scope)")
	if err != nil {
		return err
	}
	scope, filter, err := f.check()
	if err != nil {
		return err
	}
	api, closeAPI, err := f.open()
	if err != nil {
		return err
	}
	defer closeAPI()

	out := newRowWriter(f.format, stdout, "no anchors found", anchorColumns)
	req := &lgv1.AnchorsRequest{Target: target, Scope: scope, Filter: filter, PageSize: f.pageSize()}
	err = pageThrough(ctx, f.limit, func(ctx context.Context, token string) ([]*lgv1.Anchor, string, error) {
		req.PageToken = token
		res, err := api.Anchors(ctx, req)
		return res.GetAnchors(), res.GetNextPageToken(), err
	}, out.Write)
	if err != nil {
		return err
	}
	return out.Flush()
}
