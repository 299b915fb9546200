package main

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/apiserver"
)

type velocityCmd struct{}

func (*velocityCmd) name() string { return "velocity" }
func (*velocityCmd) synopsis() string {
	return "count new and lost backlinks and referring domains of a target per day"
}

var velocityColumns = []column[*lgv1.VelocityDay]{
	{name: "date", value: (*lgv1.VelocityDay).GetDate, table: (*lgv1.VelocityDay).GetDate},
	{name: "new_backlinks", title: "NEW", value: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.NewBacklinks) },
		table: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.NewBacklinks) }},
	{name: "lost_backlinks", title: "LOST", value: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.LostBacklinks) },
		table: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.LostBacklinks) }},
	{name: "new_referring_domains", title: "NEW DOMAINS", value: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.NewReferringDomains) },
		table: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.NewReferringDomains) }},
	{name: "lost_referring_domains", title: "LOST DOMAINS", value: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.LostReferringDomains) },
		table: func(d *lgv1.VelocityDay) string { return fmt.Sprint(d.LostReferringDomains) }},
}

func (c *velocityCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("velocity", "velocity [--data DIR | --server ADDR] --from DATE --to DATE [flags] TARGET", stderr)
	var f queryFlags
	f.register(fs, true, false)
	from := fs.String("from", "", "first day (YYYY-MM-DD, UTC; or RFC 3339)")
	to := fs.String("to", "", "the day after the last (exclusive)")
	target, scope, filter, err := f.parse(fs, args, targetArg)
	if err != nil {
		return err
	}
	req := &lgv1.VelocityRequest{Target: target, Scope: scope, Filter: filter}
	for _, t := range []struct {
		flag, v string
		dst     **timestamppb.Timestamp
	}{{"--from", *from, &req.From}, {"--to", *to, &req.To}} {
		if t.v == "" {
			return usagef("%s is required", t.flag)
		}
		tm, err := apiserver.ParseTime(t.v)
		if err != nil {
			return usagef("%s: %w", t.flag, err)
		}
		*t.dst = timestamppb.New(tm)
	}
	return listRows(ctx, &f, stdout, "no days", velocityColumns, func(ctx context.Context, api queryAPI, _ string) ([]*lgv1.VelocityDay, string, error) {
		res, err := api.Velocity(ctx, req)
		return res.GetDays(), "", err
	})
}
