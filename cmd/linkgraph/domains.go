package main

import (
	"context"
	"fmt"
	"io"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

type domainsCmd struct{}

func (*domainsCmd) name() string { return "domains" }
func (*domainsCmd) synopsis() string {
	return "list the registrable domains that link to a target, most backlinks first"
}

var domainColumns = []column[*lgv1.ReferringDomain]{
	{name: "domain", value: (*lgv1.ReferringDomain).GetDomain, table: (*lgv1.ReferringDomain).GetDomain},
	{name: "backlinks", value: func(d *lgv1.ReferringDomain) string { return fmt.Sprint(d.Backlinks) },
		table: func(d *lgv1.ReferringDomain) string { return fmt.Sprint(d.Backlinks) }},
	{name: "follow_backlinks", title: "FOLLOW", value: func(d *lgv1.ReferringDomain) string { return fmt.Sprint(d.FollowBacklinks) },
		table: func(d *lgv1.ReferringDomain) string { return fmt.Sprint(d.FollowBacklinks) }},
	{name: "first_seen", value: func(d *lgv1.ReferringDomain) string { return timeString(d.FirstSeen) },
		table: func(d *lgv1.ReferringDomain) string { return tableTime(d.FirstSeen) }},
	{name: "last_seen", value: func(d *lgv1.ReferringDomain) string { return timeString(d.LastSeen) },
		table: func(d *lgv1.ReferringDomain) string { return tableTime(d.LastSeen) }},
}

func (c *domainsCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("domains", "domains [--data DIR | --server ADDR] [flags] TARGET", stderr)
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

	out := newRowWriter(f.format, stdout, "no referring domains found", domainColumns)
	req := &lgv1.ReferringDomainsRequest{Target: target, Scope: scope, Filter: filter, PageSize: f.pageSize()}
	err = pageThrough(ctx, f.limit, func(ctx context.Context, token string) ([]*lgv1.ReferringDomain, string, error) {
		req.PageToken = token
		res, err := api.ReferringDomains(ctx, req)
		return res.GetDomains(), res.GetNextPageToken(), err
	}, out.Write)
	if err != nil {
		return err
	}
	return out.Flush()
}
