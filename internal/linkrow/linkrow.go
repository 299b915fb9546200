// Package linkrow is the flat text form of a backlink: the columns and
// field values of the CLI's TSV and CSV output and of the HTTP CSV export,
// kept in one place so that a column means the same wherever a row is
// written, and so that a row read back is the Backlink it was made from.
package linkrow

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// columns are the names of the fields, in order. The order is kept stable
// for scripts: new columns go at the end.
var columns = []string{
	"source_url", "target_url", "anchor_text", "rel", "type", "redirect_status",
	"nofollow", "first_seen", "last_seen", "source_title", "source_status", "lost_at",
	"lost_reason", "source_authority", "source_page_authority", "history",
}

// Columns returns the column names of a backlink row, in order, as a new
// slice the caller may keep.
func Columns() []string { return append([]string(nil), columns...) }

// AppendFields appends the fields of bl, in Columns order, to dst: URLs,
// anchor text and title as they are, rel tokens joined by spaces, the type
// by its short name (TypeName), numbers in decimal, nofollow as true or
// false, times by Time ("" when unset, as lost_at of a live link), the lost
// reason by ReasonName, the source's domain and page authorities in
// decimal, and the history by History.
func AppendFields(dst []string, bl *lgv1.Backlink) []string {
	return append(dst,
		bl.GetSourceUrl(),
		bl.GetTargetUrl(),
		bl.GetAnchorText(),
		strings.Join(bl.GetRel(), " "),
		TypeName(bl.GetType()),
		strconv.FormatInt(int64(bl.GetRedirectStatus()), 10),
		strconv.FormatBool(bl.GetNofollow()),
		Time(bl.GetFirstSeen()),
		Time(bl.GetLastSeen()),
		bl.GetSourceTitle(),
		strconv.FormatInt(int64(bl.GetSourceStatus()), 10),
		Time(bl.GetLostAt()),
		ReasonName(bl.GetLostReason()),
		strconv.FormatInt(int64(bl.GetSourceAuthority()), 10),
		strconv.FormatInt(int64(bl.GetSourcePageAuthority()), 10),
		History(bl.GetHistory()),
	)
}

// History formats the earlier times a link was lost and came back, oldest
// first, as space-separated reason/lost_at/returned_at tokens (the reason
// by ReasonName, the times by Time), like rel tokens:
// "removed/2024-07-01T00:00:00Z/2024-07-08T00:00:00Z"; "" for none.
func History(events []*lgv1.LinkEvent) string {
	var b strings.Builder
	for i, e := range events {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(ReasonName(e.GetReason()))
		b.WriteByte('/')
		b.WriteString(Time(e.GetLostAt()))
		b.WriteByte('/')
		b.WriteString(Time(e.GetReturnedAt()))
	}
	return b.String()
}

func parseHistory(s string) ([]*lgv1.LinkEvent, error) {
	if s == "" {
		return nil, nil
	}
	var events []*lgv1.LinkEvent
	for tok := range strings.SplitSeq(s, " ") {
		parts := strings.Split(tok, "/")
		if len(parts) != 3 {
			return nil, fmt.Errorf("linkrow: history event %q is not reason/lost_at/returned_at", tok)
		}
		e := &lgv1.LinkEvent{}
		var err error
		if e.Reason, err = parseReason(parts[0]); err != nil {
			return nil, err
		}
		if e.LostAt, err = parseTime(parts[1]); err != nil {
			return nil, err
		}
		if e.ReturnedAt, err = parseTime(parts[2]); err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

func parseReason(s string) (lgv1.LostReason, error) {
	if s == "" {
		return lgv1.LostReason_LOST_REASON_UNSPECIFIED, nil
	}
	v, ok := lgv1.LostReason_value["LOST_REASON_"+strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("linkrow: unknown lost reason %q", s)
	}
	return lgv1.LostReason(v), nil
}

// parseTime reads a time Time wrote; nil for "".
func parseTime(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("linkrow: %w", err)
	}
	return timestamppb.New(t), nil
}

// ReasonName is the short lowercase name of a lost reason ("removed",
// "page_gone", "redirected", "noindex", "robots_disallowed",
// "host_unreachable"), "" for none.
func ReasonName(r lgv1.LostReason) string {
	if r == lgv1.LostReason_LOST_REASON_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "LOST_REASON_"))
}

// TypeName is the short lowercase name of a link type ("a", "img",
// "meta_refresh", ...), as the CLI's flags and output spell it.
func TypeName(t lgv1.LinkType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "LINK_TYPE_"))
}

// Time formats ts as RFC 3339 in UTC with as many fractional digits as it
// has; "" when ts is nil.
func Time(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}

// Parse reads back a row that AppendFields wrote. The rel tokens of a
// backlink hold no spaces, so splitting them again is exact.
func Parse(fields []string) (*lgv1.Backlink, error) {
	if len(fields) != len(columns) {
		return nil, fmt.Errorf("linkrow: %d fields, want %d", len(fields), len(columns))
	}
	bl := &lgv1.Backlink{SourceUrl: fields[0], TargetUrl: fields[1], AnchorText: fields[2], SourceTitle: fields[9]}
	if fields[3] != "" {
		bl.Rel = strings.Split(fields[3], " ")
	}
	v, ok := lgv1.LinkType_value["LINK_TYPE_"+strings.ToUpper(fields[4])]
	if !ok {
		return nil, fmt.Errorf("linkrow: unknown link type %q", fields[4])
	}
	bl.Type = lgv1.LinkType(v)
	var err error
	if bl.RedirectStatus, err = parseInt32("redirect_status", fields[5]); err != nil {
		return nil, err
	}
	if bl.Nofollow, err = strconv.ParseBool(fields[6]); err != nil {
		return nil, fmt.Errorf("linkrow: nofollow: %w", err)
	}
	for _, f := range []struct {
		dst **timestamppb.Timestamp
		s   string
	}{{&bl.FirstSeen, fields[7]}, {&bl.LastSeen, fields[8]}, {&bl.LostAt, fields[11]}} {
		if *f.dst, err = parseTime(f.s); err != nil {
			return nil, err
		}
	}
	if bl.SourceStatus, err = parseInt32("source_status", fields[10]); err != nil {
		return nil, err
	}
	if bl.LostReason, err = parseReason(fields[12]); err != nil {
		return nil, err
	}
	if bl.SourceAuthority, err = parseInt32("source_authority", fields[13]); err != nil {
		return nil, err
	}
	if bl.SourcePageAuthority, err = parseInt32("source_page_authority", fields[14]); err != nil {
		return nil, err
	}
	if bl.History, err = parseHistory(fields[15]); err != nil {
		return nil, err
	}
	return bl, nil
}

func parseInt32(name, s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("linkrow: %s: %w", name, err)
	}
	return int32(n), nil
}
