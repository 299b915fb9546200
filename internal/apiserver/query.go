package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// ParseTime reads a time bound as the CLI and the HTTP query parameters
// take it: RFC 3339 (2024-05-01T12:00:00Z) or a date (2024-05-01, midnight
// UTC).
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: use RFC 3339 (2024-05-01T12:00:00Z) or a date (2024-05-01)", s)
	}
	return t, nil
}

// route is an HTTP route of the API: the one method it answers (GET ones
// also answer HEAD) and the request message its parameters fill.
type route struct {
	method string
	req    protoreflect.MessageDescriptor
	// body is true when the request comes as a JSON body (body: "*" in
	// linkgraph_gateway.yaml): grpc-gateway then reads no query parameter.
	body bool
	// extras are query parameters that are not fields of req.
	extras []string
}

// routes are the routes of linkgraph_gateway.yaml and ExportPath, by path.
// The gateway mux keeps its own routes unexported, so the methods are
// repeated here for the Allow header of a 405; TestRoutesMatchGatewayYAML
// keeps the two in step.
var routes = map[string]route{
	"/v1/backlinks":         {method: http.MethodGet, req: (*lgv1.BacklinksRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/referring-domains": {method: http.MethodGet, req: (*lgv1.ReferringDomainsRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/anchors":           {method: http.MethodGet, req: (*lgv1.AnchorsRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/summary":           {method: http.MethodGet, req: (*lgv1.SummaryRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/outlinks":          {method: http.MethodGet, req: (*lgv1.OutlinksRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/new-links":         {method: http.MethodGet, req: (*lgv1.LinkChangesRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/lost-links":        {method: http.MethodGet, req: (*lgv1.LinkChangesRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/velocity":          {method: http.MethodGet, req: (*lgv1.VelocityRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/ranks":             {method: http.MethodGet, req: (*lgv1.RanksRequest)(nil).ProtoReflect().Descriptor()},
	"/v1/ranks:compute":     {method: http.MethodPost, req: (*lgv1.ComputeRanksRequest)(nil).ProtoReflect().Descriptor(), body: true},
	"/v1/intersect":         {method: http.MethodGet, req: (*lgv1.IntersectRequest)(nil).ProtoReflect().Descriptor()},
	ExportPath:              {method: http.MethodGet, req: (*lgv1.ExportRequest)(nil).ProtoReflect().Descriptor(), extras: []string{"format", "resume_tokens"}},
}

// allow is the Allow header of rt's path.
func (rt route) allow() string {
	if rt.method == http.MethodGet {
		return "GET, HEAD"
	}
	return rt.method
}

// takes reports whether rt answers method.
func (rt route) takes(method string) bool {
	return method == rt.method || method == http.MethodHead && rt.method == http.MethodGet
}

// paramNames lists the query parameters of rt for error messages: the
// request's fields by proto name, a message field as name.*, then extras.
func (rt route) paramNames() string {
	var names []string
	fields := rt.req.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := string(fd.Name())
		if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != "google.protobuf.Timestamp" {
			name += ".*"
		}
		names = append(names, name)
	}
	return strings.Join(append(names, rt.extras...), ", ")
}

// normalizeQuery refuses a query parameter that names no field of the
// route's request (grpc-gateway would drop it, so a typo such as scpoe=host
// would silently widen the query), and any query parameter of a route whose
// request is its JSON body, by calling fail with InvalidArgument. It
// rewrites query parameters into the forms grpc-gateway parses, so that HTTP
// takes what the CLI takes: enum values by their short names in any case
// (scope=host, order_by=first_seen, filter.types=img for SCOPE_HOST,
// BACKLINK_ORDER_FIRST_SEEN, LINK_TYPE_IMG), repeated enums also
// comma-separated (filter.types=a,img), and dates for timestamps
// (filter.first_seen_from=2024-05-01); a time in neither form is refused
// here, where the message can name both. grpc-gateway offers only a
// process-wide hook for its query parser, hence a middleware. Other values
// it cannot map are passed on unchanged for the gateway to reject with 400.
// A request with a method the route does not take is passed on for the
// gateway to answer 405.
func normalizeQuery(next http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := routes[r.URL.Path]
		if !ok || !rt.takes(r.Method) || r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			next.ServeHTTP(w, r) // the gateway answers a malformed query with 400
			return
		}
		changed := false
		for key, vals := range q {
			if rt.body {
				fail(w, r, status.Errorf(codes.InvalidArgument, "query parameter %q: %s %s takes no query parameters; its fields (%s) come in a JSON body", key, rt.method, r.URL.Path, rt.paramNames()))
				return
			}
			fd := fieldByPath(rt.req, key)
			if fd == nil {
				if slices.Contains(rt.extras, key) {
					continue
				}
				fail(w, r, status.Errorf(codes.InvalidArgument, "unknown query parameter %q for %s; the parameters are the fields of %s: %s", key, r.URL.Path, rt.req.Name(), rt.paramNames()))
				return
			}
			nv, ok, err := normalizeValues(fd, vals)
			if err != nil {
				fail(w, r, status.Errorf(codes.InvalidArgument, "%s: %v", key, err))
				return
			}
			if ok {
				q[key], changed = nv, true
			}
		}
		if changed {
			r2 := *r
			u := *r.URL
			u.RawQuery = q.Encode()
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// fieldByPath resolves a dotted query key (filter.follow_only) by proto or
// JSON names, as grpc-gateway does.
func fieldByPath(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		fd := md.Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			fd = md.Fields().ByJSONName(p)
		}
		if fd == nil {
			return nil
		}
		if i == len(parts)-1 {
			return fd
		}
		if md = fd.Message(); md == nil {
			return nil
		}
	}
	return nil
}

// normalizeValues returns the rewritten values of one field and whether
// anything changed, or the error of a value that cannot be a time.
func normalizeValues(fd protoreflect.FieldDescriptor, vals []string) ([]string, bool, error) {
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		var out []string
		changed := false
		for _, v := range vals {
			parts := []string{v}
			if fd.IsList() && strings.Contains(v, ",") {
				parts, changed = strings.Split(v, ","), true
			}
			for _, p := range parts {
				if name, ok := EnumName(fd.Enum(), p); ok && name != p {
					p, changed = name, true
				}
				out = append(out, p)
			}
		}
		return out, changed, nil
	case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.Timestamp":
		changed := false
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = v
			if _, err := time.Parse(time.DateOnly, v); err == nil {
				out[i], changed = v+"T00:00:00Z", true
			} else if _, err := ParseTime(v); err != nil {
				return nil, false, err
			}
		}
		return out, changed, nil
	}
	return nil, false, nil
}

// EnumName returns the full name of the enum value s names: the full name
// in any case (SCOPE_HOST, scope_host) or the name without the enum's prefix
// (host), '-' standing for '_'. The prefix is the zero value's name without
// UNSPECIFIED (SCOPE_ of SCOPE_UNSPECIFIED). ok is false when s names none.
func EnumName(ed protoreflect.EnumDescriptor, s string) (name string, ok bool) {
	up := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if up == "" {
		return "", false
	}
	if v := ed.Values().ByName(protoreflect.Name(up)); v != nil {
		return up, true
	}
	if zero := ed.Values().ByNumber(0); zero != nil {
		prefix := strings.TrimSuffix(string(zero.Name()), "UNSPECIFIED")
		if v := ed.Values().ByName(protoreflect.Name(prefix + up)); v != nil {
			return string(v.Name()), true
		}
	}
	return "", false
}
