package apiserver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/linkgraph/linkgraph/internal/apiserver"
)

// jsonError is the API's error body.
type jsonError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// send does method base+path with body (nil for none, a non-bytes reader
// for a chunked one) and returns the response and its body.
func send(t *testing.T, method, u string, body io.Reader, contentType string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, http.DefaultClient, req)
}

// wantError checks that res is an HTTP status with a JSON error of the
// API's shape and gRPC code, and returns the message.
func wantError(t *testing.T, what string, res *http.Response, body []byte, httpStatus int, code codes.Code) string {
	t.Helper()
	var e jsonError
	if err := json.Unmarshal(body, &e); err != nil || res.StatusCode != httpStatus || e.Code != int(code) || e.Message == "" {
		t.Errorf("%s: HTTP %d %s, want %d with a JSON error of code %d (%v)", what, res.StatusCode, body, httpStatus, code, code)
	}
	return e.Message
}

// onlyReader hides a reader's type, so that the client sends it chunked,
// its length unknown.
type onlyReader struct{ io.Reader }

// A request body over MaxBodyBytes is refused with 413 on every route,
// whether its length is announced or not, before the server reads it all.
func TestRequestBodyIsCapped(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	big := bytes.Repeat([]byte(" "), apiserver.MaxBodyBytes+1)
	for _, c := range []struct {
		method, path string
		body         io.Reader
	}{
		{http.MethodPost, "/v1/ranks:compute", bytes.NewReader(big)},
		{http.MethodPost, "/v1/ranks:compute", onlyReader{bytes.NewReader(big)}},
		{http.MethodPost, "/v1/ranks:compute", onlyReader{io.MultiReader(strings.NewReader(`{"pages":false}`), bytes.NewReader(big))}},
		{http.MethodGet, "/v1/backlinks?target=http://t.example/", bytes.NewReader(big)},
		{http.MethodGet, apiserver.ExportPath, onlyReader{bytes.NewReader(big)}},
	} {
		res, body := send(t, c.method, s.httpURL+c.path, c.body, "application/json")
		wantError(t, c.method+" "+c.path, res, body, http.StatusRequestEntityTooLarge, codes.ResourceExhausted)
	}
	// A body within the bound is read as before, announced or not.
	for _, body := range []io.Reader{
		strings.NewReader(`{"pages": false}`),
		onlyReader{strings.NewReader(`{"pages": false}` + strings.Repeat(" ", apiserver.MaxBodyBytes-16))},
	} {
		if res, b := send(t, http.MethodPost, s.httpURL+"/v1/ranks:compute", body, "application/json"); res.StatusCode != http.StatusOK {
			t.Errorf("small body: HTTP %d %s, want 200", res.StatusCode, b)
		}
	}
}

// Every route answers a method it does not take with 405 and an Allow
// header; a GET route takes HEAD too.
func TestWrongMethodIs405(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	getRoutes := []string{"/v1/backlinks", "/v1/referring-domains", "/v1/anchors", "/v1/summary", "/v1/outlinks",
		"/v1/new-links", "/v1/lost-links", "/v1/velocity", "/v1/ranks", "/v1/intersect", apiserver.ExportPath}
	for _, path := range getRoutes {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			res, body := send(t, m, s.httpURL+path, nil, "")
			wantError(t, m+" "+path, res, body, http.StatusMethodNotAllowed, codes.Unimplemented)
			if got := res.Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q, want GET, HEAD", m, path, got)
			}
		}
	}
	// A form POST is not the GET with the form as its query (grpc-gateway's
	// path length fallback), which would also skip the check of unknown
	// parameters.
	res, body := send(t, http.MethodPost, s.httpURL+"/v1/backlinks", strings.NewReader("target=http://t.example/&bogus=1"), "application/x-www-form-urlencoded")
	wantError(t, "form POST /v1/backlinks", res, body, http.StatusMethodNotAllowed, codes.Unimplemented)

	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		res, body := send(t, m, s.httpURL+"/v1/ranks:compute", nil, "")
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
			t.Errorf("%s /v1/ranks:compute: HTTP %d, Allow %q, %s; want 405, Allow POST", m, res.StatusCode, res.Header.Get("Allow"), body)
		}
	}
	res, _ = send(t, http.MethodHead, s.httpURL+"/v1/backlinks?target=http://t.example/", nil, "")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("HEAD /v1/backlinks: HTTP %d %q, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"))
	}
	res, _ = send(t, http.MethodHead, s.httpURL+"/v1/backlinks?target=nope", nil, "")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("HEAD /v1/backlinks?target=nope: HTTP %d, want 400 as GET", res.StatusCode)
	}
	// A path with no route is still 404.
	res, body = send(t, http.MethodPost, s.httpURL+"/v1/nope", nil, "")
	wantError(t, "POST /v1/nope", res, body, http.StatusNotFound, codes.NotFound)
}

// The POST route takes its request as a JSON body only: a query parameter,
// even one naming a field, and an unknown field of the body are refused,
// not dropped.
func TestComputeRanksRefusesWhatItWouldDrop(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	for _, c := range []struct{ query, body string }{
		{"bogus=1", `{}`},
		{"pages=true", `{}`},
		{"", `{"bogus":1}`},
		{"", `{"pages":true,"pgaes":true}`},
	} {
		res, body := send(t, http.MethodPost, s.httpURL+"/v1/ranks:compute?"+c.query, strings.NewReader(c.body), "application/json")
		msg := wantError(t, c.query+" "+c.body, res, body, http.StatusBadRequest, codes.InvalidArgument)
		if c.query != "" && !strings.Contains(msg, "JSON body") {
			t.Errorf("%s: message %q does not say the fields come in the body", c.query, msg)
		}
	}
	for _, b := range []string{``, `{}`, `{"pages":false}`} {
		if res, body := send(t, http.MethodPost, s.httpURL+"/v1/ranks:compute", strings.NewReader(b), "application/json"); res.StatusCode != http.StatusOK {
			t.Errorf("body %q: HTTP %d %s, want 200", b, res.StatusCode, body)
		}
	}
}

// The errors of a route name its own fields.
func TestErrorsNameTheRoutesFields(t *testing.T) {
	s := startServer(t, buildIndex(t), "", nil)
	for _, c := range []struct {
		path     string
		query    url.Values
		want     []string
		wantNone []string
	}{
		{"/v1/outlinks", url.Values{"source": {"x.example"}}, []string{`source "x.example"`}, []string{"target"}},
		{"/v1/outlinks", url.Values{}, []string{"source is empty"}, []string{"target"}},
		{"/v1/outlinks", url.Values{"source": {"http://x.example/"}, "scope": {"domain"}},
			[]string{`"scope"`, "OutlinksRequest: source, page_size, page_token, filter.*"}, []string{"target"}},
		{"/v1/summary", url.Values{"target": {"t.example"}, "page_size": {"3"}},
			[]string{"SummaryRequest: target, scope, filter.*"}, nil},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "filter.first_seen_from": {"notadate"}},
			[]string{"filter.first_seen_from", "RFC 3339", "2024-05-01"}, nil},
		{"/v1/backlinks", url.Values{"target": {"http://t.example/"}, "filter.last_seen_to": {"2024-05-01T12:00:00"}},
			[]string{"filter.last_seen_to", "RFC 3339", "2024-05-01"}, nil},
	} {
		what := c.path + "?" + c.query.Encode()
		res, body := send(t, http.MethodGet, s.httpURL+what, nil, "")
		msg := wantError(t, what, res, body, http.StatusBadRequest, codes.InvalidArgument)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q, want it to say %q", what, msg, w)
			}
		}
		for _, w := range c.wantNone {
			if strings.Contains(msg, w) {
				t.Errorf("%s: message %q names %q, no parameter of the route", what, msg, w)
			}
		}
	}
	// Both time forms are still taken.
	for _, v := range []string{"2024-05-01", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5+02:00"} {
		var resp json.RawMessage
		code, body := get(t, http.DefaultClient, s.httpURL, "/v1/backlinks", url.Values{"target": {"http://t.example/"}, "filter.first_seen_from": {v}}, "")
		if code != http.StatusOK || json.Unmarshal(body, &resp) != nil {
			t.Errorf("filter.first_seen_from=%s: HTTP %d %s, want 200", v, code, body)
		}
	}
}
