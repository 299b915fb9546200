package apiserver

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// TestNormalizeQuery runs a query through normalizeQuery and then through
// grpc-gateway's own query parser, and compares the request it builds.
func TestNormalizeQuery(t *testing.T) {
	may1 := timestamppb.New(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	cases := []struct {
		query string
		want  *lgv1.BacklinksRequest
	}{
		{"target=x&scope=host", &lgv1.BacklinksRequest{Target: "x", Scope: lgv1.Scope_SCOPE_HOST}},
		{"target=x&scope=SCOPE_PREFIX", &lgv1.BacklinksRequest{Target: "x", Scope: lgv1.Scope_SCOPE_PREFIX}},
		{"target=x&scope=Domain", &lgv1.BacklinksRequest{Target: "x", Scope: lgv1.Scope_SCOPE_DOMAIN}},
		{"target=x&scope=2", &lgv1.BacklinksRequest{Target: "x", Scope: lgv1.Scope_SCOPE_HOST}},
		{"target=x&order_by=first_seen&descending=true&one_per_domain=true", &lgv1.BacklinksRequest{
			Target: "x", OrderBy: lgv1.BacklinkOrder_BACKLINK_ORDER_FIRST_SEEN, Descending: true, OnePerDomain: true}},
		{"target=x&filter.types=a,img&filter.types=meta-refresh", &lgv1.BacklinksRequest{Target: "x", Filter: &lgv1.Filter{
			Types: []lgv1.LinkType{lgv1.LinkType_LINK_TYPE_A, lgv1.LinkType_LINK_TYPE_IMG, lgv1.LinkType_LINK_TYPE_META_REFRESH}}}},
		{"target=x&filter.internal=exclude&filter.follow_only=true&filter.include_lost=true&filter.anchor_contains=seo", &lgv1.BacklinksRequest{
			Target: "x", Filter: &lgv1.Filter{Internal: lgv1.InternalLinks_INTERNAL_LINKS_EXCLUDE, FollowOnly: true, IncludeLost: true, AnchorContains: "seo"}}},
		{"target=x&filter.first_seen_from=2024-05-01&filter.lastSeenTo=2024-05-01T00:00:00Z", &lgv1.BacklinksRequest{
			Target: "x", Filter: &lgv1.Filter{FirstSeenFrom: may1, LastSeenTo: may1}}},
		{"target=x&page_size=5&page_token=abc", &lgv1.BacklinksRequest{Target: "x", PageSize: 5, PageToken: "abc"}},
	}
	for _, c := range cases {
		var got *lgv1.BacklinksRequest
		h := normalizeQuery(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = &lgv1.BacklinksRequest{}
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			if err := runtime.PopulateQueryParameters(got, r.Form, utilities.NewDoubleArray(nil)); err != nil {
				t.Errorf("%s: %v", c.query, err)
			}
		}), func(_ http.ResponseWriter, _ *http.Request, err error) { t.Errorf("%s: refused: %v", c.query, err) })
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/backlinks?"+c.query, nil))
		if !proto.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.query, got, c.want)
		}
	}
}

// A parameter that names no field is refused rather than dropped.
func TestUnknownQueryParameterIsRefused(t *testing.T) {
	for _, c := range []struct {
		path, query string
		refused     bool
	}{
		{"/v1/backlinks", "target=x&scpoe=host", true},
		{"/v1/backlinks", "target=x&filter.folow_only=true", true},
		{"/v1/summary", "target=x&page_size=3", true},
		{"/v1/backlinks", "target=x&scope=host&filter.follow_only=true", false},
		{ExportPath, "format=csv&resume_tokens=true&target=x", false},
		{ExportPath, "formt=csv", true},
	} {
		var refused error
		passed := false
		h := normalizeQuery(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true }),
			func(_ http.ResponseWriter, _ *http.Request, err error) { refused = err })
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, c.path+"?"+c.query, nil))
		if got := refused != nil; got != c.refused || passed == c.refused {
			t.Errorf("%s?%s: refused %v (%v), passed on %v; want refused %v", c.path, c.query, got, refused, passed, c.refused)
		}
		if refused != nil && status.Code(refused) != codes.InvalidArgument {
			t.Errorf("%s?%s: %v, want InvalidArgument", c.path, c.query, refused)
		}
	}
}

// routes repeats the methods of linkgraph_gateway.yaml for the Allow
// header; every route there must be here with its method, and no other.
func TestRoutesMatchGatewayYAML(t *testing.T) {
	raw, err := os.ReadFile("../../api/linkgraph/v1/linkgraph_gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`(?m)^\s*(get|post|put|delete|patch):\s*(\S+)\s*$`)
	want := map[string]string{ExportPath: http.MethodGet}
	for _, m := range rule.FindAllStringSubmatch(string(raw), -1) {
		want[m[2]] = strings.ToUpper(m[1])
	}
	if len(want) < 2 {
		t.Fatalf("no routes read from the YAML")
	}
	for path, method := range want {
		if rt, ok := routes[path]; !ok || rt.method != method {
			t.Errorf("%s %s of the YAML: routes has %q", method, path, rt.method)
		}
	}
	for path := range routes {
		if _, ok := want[path]; !ok {
			t.Errorf("routes has %s, which the YAML does not route", path)
		}
	}
}
