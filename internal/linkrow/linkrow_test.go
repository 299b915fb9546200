package linkrow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
	"github.com/linkgraph/linkgraph/internal/linkrow"
)

// TestColumns pins the header: scripts read the columns by position.
func TestColumns(t *testing.T) {
	want := "source_url target_url anchor_text rel type redirect_status nofollow first_seen last_seen source_title source_status lost_at lost_reason source_authority source_page_authority history"
	if got := strings.Join(linkrow.Columns(), " "); got != want {
		t.Errorf("columns %q, want %q", got, want)
	}
	cols := linkrow.Columns()
	cols[0] = "changed"
	if linkrow.Columns()[0] != "source_url" {
		t.Error("Columns returned its own slice")
	}
}

func TestFieldsRoundTrip(t *testing.T) {
	ts := func(s string) *timestamppb.Timestamp {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(tm)
	}
	for _, c := range []struct {
		bl     *lgv1.Backlink
		fields []string
	}{
		{&lgv1.Backlink{
			SourceUrl: "http://a.example/p?q=1,2", TargetUrl: "http://t.example/", AnchorText: `say "hi", then	go`,
			Rel: []string{"nofollow", "ugc"}, Type: lgv1.LinkType_LINK_TYPE_META_REFRESH, RedirectStatus: 0, Nofollow: true,
			FirstSeen: ts("2024-05-01T00:00:00Z"), LastSeen: ts("2024-06-01T12:30:00.123Z"),
			SourceTitle: "Ünïcode, title", SourceStatus: 200, LostAt: ts("2024-07-01T00:00:00Z"), LostReason: lgv1.LostReason_LOST_REASON_PAGE_GONE, SourceAuthority: 42, SourcePageAuthority: 7,
			History: []*lgv1.LinkEvent{
				{LostAt: ts("2024-05-10T00:00:00Z"), Reason: lgv1.LostReason_LOST_REASON_REMOVED, ReturnedAt: ts("2024-05-11T08:00:00.5Z")},
				{LostAt: ts("2024-05-20T00:00:00Z"), Reason: lgv1.LostReason_LOST_REASON_ROBOTS_DISALLOWED, ReturnedAt: ts("2024-05-21T00:00:00Z")},
			},
		}, []string{"http://a.example/p?q=1,2", "http://t.example/", `say "hi", then	go`, "nofollow ugc", "meta_refresh", "0", "true",
			"2024-05-01T00:00:00Z", "2024-06-01T12:30:00.123Z", "Ünïcode, title", "200", "2024-07-01T00:00:00Z", "page_gone", "42", "7",
			"removed/2024-05-10T00:00:00Z/2024-05-11T08:00:00.5Z robots_disallowed/2024-05-20T00:00:00Z/2024-05-21T00:00:00Z"}},
		{&lgv1.Backlink{
			SourceUrl: "http://r.example/", TargetUrl: "https://t.example/new", Type: lgv1.LinkType_LINK_TYPE_REDIRECT,
			RedirectStatus: 301, FirstSeen: ts("2024-05-01T00:00:00Z"), LastSeen: ts("2024-05-01T00:00:00Z"), SourceStatus: 301,
		}, []string{"http://r.example/", "https://t.example/new", "", "", "redirect", "301", "false",
			"2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z", "", "301", "", "", "0", "0", ""}},
	} {
		fields := linkrow.AppendFields(nil, c.bl)
		if !slices.Equal(fields, c.fields) {
			t.Errorf("fields\n%q\nwant\n%q", fields, c.fields)
		}
		back, err := linkrow.Parse(fields)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(back, c.bl) {
			t.Errorf("parsed back\n%v\nwant\n%v", back, c.bl)
		}
	}
}

func TestParseRejectsBadRows(t *testing.T) {
	good := []string{"http://a.example/", "http://t.example/", "", "", "a", "0", "false", "2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z", "", "200", "", "", "0", "0", ""}
	if _, err := linkrow.Parse(good); err != nil {
		t.Fatalf("good row: %v", err)
	}
	for _, bad := range []struct {
		field int
		value string
	}{
		{4, "hyperlink"}, {5, "x"}, {6, "maybe"}, {7, "yesterday"}, {10, "99999999999"}, {11, "2024"}, {12, "vanished"},
		{13, "high"}, {14, "1.5"}, {15, "removed/2024-05-10T00:00:00Z"}, {15, "gone/2024-05-10T00:00:00Z/2024-05-11T00:00:00Z"},
		{15, "removed/2024/2024-05-11T00:00:00Z"},
	} {
		row := slices.Clone(good)
		row[bad.field] = bad.value
		if _, err := linkrow.Parse(row); err == nil {
			t.Errorf("field %d = %q accepted", bad.field, bad.value)
		}
	}
	if _, err := linkrow.Parse(good[:15]); err == nil {
		t.Error("a short row was accepted")
	}
}
