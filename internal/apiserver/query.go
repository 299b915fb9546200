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

// routeRequests maps each gateway route to its request message, whose
// fields the query parameters name.
var routeRequests = map[string]protoreflect.MessageDescriptor{
	"/v1/backlinks":         (*lgv1.BacklinksRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/referring-domains": (*lgv1.ReferringDomainsRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/anchors":           (*lgv1.AnchorsRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/summary":           (*lgv1.SummaryRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/outlinks":          (*lgv1.OutlinksRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/new-links":         (*lgv1.LinkChangesRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/lost-links":        (*lgv1.LinkChangesRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/velocity":          (*lgv1.VelocityRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/ranks":             (*lgv1.RanksRequest)(nil).ProtoReflect().Descriptor(),
	"/v1/intersect":         (*lgv1.IntersectRequest)(nil).ProtoReflect().Descriptor(),
	ExportPath:              (*lgv1.ExportRequest)(nil).ProtoReflect().Descriptor(),
}

// routeExtras are the query parameters of a route that are not fields of
// its request message.
var routeExtras = map[string][]string{ExportPath: {"format", "resume_tokens"}}

// normalizeQuery refuses a query parameter that names no field of the
// route's request (grpc-gateway would drop it, so a typo such as scpoe=host
// would silently widen the query) by calling fail with InvalidArgument, and
// rewrites query parameters into the forms grpc-gateway parses, so that HTTP takes what the CLI takes: enum values by their short
// names in any case (scope=host, order_by=first_seen, filter.types=img for
// SCOPE_HOST, BACKLINK_ORDER_FIRST_SEEN, LINK_TYPE_IMG), repeated enums also
// comma-separated (filter.types=a,img), and dates for timestamps
// (filter.first_seen_from=2024-05-01). grpc-gateway offers only a
// process-wide hook for its query parser, hence a middleware. Values it
// cannot map are passed on unchanged for the gateway to reject with 400.
func normalizeQuery(next http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		md := routeRequests[r.URL.Path]
		if md == nil || r.URL.RawQuery == "" {
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
			fd := fieldByPath(md, key)
			if fd == nil {
				if slices.Contains(routeExtras[r.URL.Path], key) {
					continue
				}
				fail(w, r, status.Errorf(codes.InvalidArgument, "unknown query parameter %q for %s; the parameters are the fields of %s (e.g. target, scope, page_size, filter.follow_only)", key, r.URL.Path, md.Name()))
				return
			}
			if nv, ok := normalizeValues(fd, vals); ok {
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
// anything changed.
func normalizeValues(fd protoreflect.FieldDescriptor, vals []string) ([]string, bool) {
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
		return out, changed
	case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.Timestamp":
		changed := false
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = v
			if _, err := time.Parse(time.DateOnly, v); err == nil {
				out[i], changed = v+"T00:00:00Z", true
			}
		}
		return out, changed
	}
	return nil, false
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
