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
	return "list the registrable domains that link to a target, most backlinks (or highest authority) first"
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
	{name: "authority", title: "AUTH", value: func(d *lgv1.ReferringDomain) string { return fmt.Sprint(d.Authority) },
		table: func(d *lgv1.ReferringDomain) string { return fmt.Sprint(d.Authority) }},
}

func (c *domainsCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("domains", "domains [--data DIR | --server ADDR] [flags] TARGET", stderr)
	var f queryFlags
	f.register(fs, true, true)
	order := fs.String("order", "backlinks", "most backlinks first, or highest authority first (authority)")
	target, scope, filter, err := f.parse(fs, args, targetArg)
	if err != nil {
		return err
	}
	req := &lgv1.ReferringDomainsRequest{Target: target, Scope: scope, Filter: filter, PageSize: f.pageSize()}
	switch *order {
	case "backlinks":
	case "authority":
		req.OrderBy = lgv1.ReferringDomainOrder_REFERRING_DOMAIN_ORDER_AUTHORITY
	default:
		return usagef("--order %q: use backlinks or authority", *order)
	}
	return listRows(ctx, &f, stdout, "no referring domains found", domainColumns, func(ctx context.Context, api queryAPI, token string) ([]*lgv1.ReferringDomain, string, error) {
		req.PageToken = token
		res, err := api.ReferringDomains(ctx, req)
		return res.GetDomains(), res.GetNextPageToken(), err
	})
}
