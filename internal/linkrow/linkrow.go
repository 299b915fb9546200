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
	"lost_reason", "source_authority", "source_page_authority",
}

// Columns returns the column names of a backlink row, in order, as a new
// slice the caller may keep.
func Columns() []string { return append([]string(nil), columns...) }

// AppendFields appends the fields of bl, in Columns order, to dst: URLs,
// anchor text and title as they are, rel tokens joined by spaces, the type
// by its short name (TypeName), numbers in decimal, nofollow as true or
// false, times by Time ("" when unset, as lost_at of a live link), the lost
// reason by ReasonName, the source's domain and page authorities in
// decimal.
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
	)
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
		if f.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.s)
		if err != nil {
			return nil, fmt.Errorf("linkrow: %w", err)
		}
		*f.dst = timestamppb.New(t)
	}
	if bl.SourceStatus, err = parseInt32("source_status", fields[10]); err != nil {
		return nil, err
	}
	if fields[12] != "" {
		v, ok := lgv1.LostReason_value["LOST_REASON_"+strings.ToUpper(fields[12])]
		if !ok {
			return nil, fmt.Errorf("linkrow: unknown lost reason %q", fields[12])
		}
		bl.LostReason = lgv1.LostReason(v)
	}
	if bl.SourceAuthority, err = parseInt32("source_authority", fields[13]); err != nil {
		return nil, err
	}
	if bl.SourcePageAuthority, err = parseInt32("source_page_authority", fields[14]); err != nil {
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
