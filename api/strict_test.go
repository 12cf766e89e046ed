package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
)

// answer sends method target (body for a POST) and decodes an error answer.
func answer(t *testing.T, h http.Handler, method, target, body string) (int, api.ErrorResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var e api.ErrorResponse
	if rec.Code != http.StatusOK {
		if err := jsonBody(rec, &e); err != nil {
			t.Fatalf("%s %s: %d %v: %q", method, target, rec.Code, err, rec.Body.String())
		}
	}
	return rec.Code, e
}

func jsonBody(rec *httptest.ResponseRecorder, into *api.ErrorResponse) error {
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		return errors.New("content type " + ct)
	}
	return json.Unmarshal(rec.Body.Bytes(), into)
}

// TestQueryStringRefused: a pair url.ParseQuery would drop (a ";", a bad
// %-escape) is a 400 naming its parameter on every endpoint, never a
// filter silently left out; endpoints without parameters refuse any.
func TestQueryStringRefused(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil)
	for _, c := range []struct{ method, target, param string }{
		{"GET", "/api/v1/incidents?severity=P9;x", "severity"},
		{"GET", "/api/v1/incidents?severity=P0&source=x;y", "source"},
		{"GET", "/api/v1/incidents?severity=%zz", "severity"},
		{"GET", "/api/v1/incidents?a;b", "a;b"},
		{"GET", "/api/v1/export?x;y", "x;y"},
		{"GET", "/api/v1/export?limit=1", "limit"},
		{"GET", "/api/v1/incidents/inc-07?foo=1", "foo"},
		{"GET", "/api/v1/incidents/inc-07?limit=abc", "limit"},
		{"GET", "/api/v1/incidents/nope?limit=abc", "limit"},
		{"GET", "/api/v1/incidents/inc-07?a=1;b=2", "a"},
		{"POST", "/api/v1/incidents/inc-07/state?force=1", "force"},
		{"POST", "/api/v1/incidents/inc-07/state?x;y", "x;y"},
	} {
		code, e := answer(t, h, c.method, c.target, `{"state":"Closed"}`)
		if code != http.StatusBadRequest || e.Parameter != c.param {
			t.Errorf("%s %s: %d %+v, want 400 naming %q", c.method, c.target, code, e, c.param)
		}
	}
	if got, _ := s.Get(context.Background(), "inc-07"); got.State == incident.Closed {
		t.Fatal("a refused state change was written")
	}
	_, e := answer(t, h, "GET", "/api/v1/incidents?severity=P9;x", "")
	if !strings.Contains(e.Error, `";"`) || !strings.Contains(e.Error, "%3B") {
		t.Errorf("semicolon error %q does not say what to do", e.Error)
	}
}

// TestEmptyListItems: an empty item in a comma list is a 400 naming the
// parameter, as an empty parameter is.
func TestEmptyListItems(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	for _, c := range []struct{ query, param string }{
		{"severity=P0,,P1", "severity"},
		{"state=Detected,", "state"},
		{"state=,Detected", "state"},
		{"source=s0,%20", "source"},
		{"type=Data&type=", "type"},
		{"fingerprint=" + fp(1) + ",", "fingerprint"},
	} {
		code, e := answer(t, h, "GET", "/api/v1/incidents?"+c.query, "")
		if code != http.StatusBadRequest || e.Parameter != c.param {
			t.Errorf("%s: %d %+v, want 400 naming %q", c.query, code, e, c.param)
		}
	}
}

// TestTimePlusHint: an offset whose "+" was sent unencoded (a space) is
// refused with the hint to encode it; a plain bad time gets no hint.
func TestTimePlusHint(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	_, e := answer(t, h, "GET", "/api/v1/incidents?since=2026-11-26T12:37:00+00:00", "")
	if e.Parameter != "since" || !strings.Contains(e.Error, "%2B") {
		t.Errorf("unencoded +: %+v, want a hint naming %%2B", e)
	}
	_, e = answer(t, h, "GET", "/api/v1/incidents?until=next+week", "")
	if e.Parameter != "until" || strings.Contains(e.Error, "%2B") {
		t.Errorf("bad time: %+v, want no %%2B hint", e)
	}
	code, _ := answer(t, h, "GET", "/api/v1/incidents?since=2026-03-01T12:00:00%2B00:00", "")
	if code != http.StatusOK {
		t.Errorf("encoded +: %d", code)
	}
	// RFC 3339's offsets end at 23:59 (Go's parser takes +24:00 and +05:60).
	for _, off := range []string{"%2B24:00", "%2B05:60"} {
		if code, e := answer(t, h, "GET", "/api/v1/incidents?since=2026-03-01T12:00:00"+off, ""); code != http.StatusBadRequest || e.Parameter != "since" {
			t.Errorf("offset %s: %d %+v, want 400 naming since", off, code, e)
		}
	}
}

// uuidStore holds one Detected incident for each id.
func uuidStore(t *testing.T, ids ...string) *memory.Store {
	t.Helper()
	s := memory.New()
	t.Cleanup(func() { _ = s.Close() })
	i := 0
	f := dedupe.NewFolder(dedupe.DefaultWindow, func() string { i++; return ids[i-1] })
	var evs []dedupe.Keyed
	for n, id := range ids {
		evs = append(evs, dedupe.Keyed{Fingerprint: fp(n), Event: incident.Event{ID: "e-" + id, Source: "s", Title: id, OccurredAt: base}})
	}
	if _, _, err := storage.Ingest(context.Background(), s, f, evs, func() time.Time { return base }); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUUIDAnyCase: a UUID id is found in any case (the stored form is
// lower-case); an id that is not a UUID stays exact, and an id stored with
// upper-case letters is still found as given.
func TestUUIDAnyCase(t *testing.T) {
	const lower = "0193c5a2-7d1e-7a53-9b1e-5c2f0d7e8a41"
	const storedUpper = "0193C5A2-7D1E-7A53-9B1E-5C2F0D7E8A42"
	s := uuidStore(t, lower, storedUpper, "inc-x")
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := api.NewClient(srv.URL, nil)
	ctx := context.Background()
	for _, id := range []string{strings.ToUpper(lower), "0193c5A2-7D1e-7a53-9b1e-5c2f0d7e8a41", storedUpper} {
		in, err := c.Get(ctx, id)
		if err != nil || !strings.EqualFold(in.ID, id) {
			t.Errorf("Get %s: %v %v", id, in, err)
		}
	}
	if _, err := c.Get(ctx, "INC-X"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get INC-X (not a UUID): %v, want not found", err)
	}
	in, changed, err := c.SetState(ctx, strings.ToUpper(lower), incident.Investigating)
	if err != nil || !changed || in.ID != lower || in.State != incident.Investigating {
		t.Fatalf("SetState upper-case: %v %v %v", in, changed, err)
	}
}

// TestNotFoundCodes: the API's 404 for an unknown incident and for an
// unknown path carry different codes, and the client takes only the first
// for "no such incident": a wrong base URL or another server is ErrNotAPI.
func TestNotFoundCodes(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil)
	mux := http.NewServeMux()
	h.Register(mux)
	if _, e := answer(t, mux, "GET", "/api/v1/incidents/nope", ""); e.Code != api.CodeIncidentNotFound {
		t.Errorf("unknown id: %+v", e)
	}
	if _, e := answer(t, mux, "POST", "/api/v1/incidents/nope/state", `{"state":"Closed"}`); e.Code != api.CodeIncidentNotFound {
		t.Errorf("unknown id (state): %+v", e)
	}
	if _, e := answer(t, mux, "GET", "/x/api/v1/incidents", ""); e.Code != api.CodeNoSuchEndpoint {
		t.Errorf("unknown path: %+v", e)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	ctx := context.Background()
	if _, err := api.NewClient(srv.URL, nil).Get(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	for _, base := range []string{srv.URL + "/x", other.URL} {
		c := api.NewClient(base, nil)
		_, getErr := c.Get(ctx, "inc-07")
		_, listErr := c.List(ctx, storage.Filter{}, storage.Page{})
		_, _, setErr := c.SetState(ctx, "inc-07", incident.Closed)
		scanErr := c.Scan(ctx, func(*incident.Incident) error { return nil })
		for _, err := range []error{getErr, listErr, setErr, scanErr} {
			if !errors.Is(err, api.ErrNotAPI) || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotAPI and not ErrNotFound", base, err)
			}
		}
	}
}

// TestCanonical: a path with an empty, "." or ".." segment is the JSON
// 404 of an unknown endpoint, not http.ServeMux's bare 307 to the cleaned
// path (which "curl -f" takes for a success); canonical paths, the
// trailing slash of the item path included, are served as before.
func TestCanonical(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil)
	mux := http.NewServeMux()
	h.Register(mux)
	c := api.Canonical(mux)
	for _, tc := range []struct {
		method, target, body string
		code                 int
		errCode              string
	}{
		{"POST", "/api/v1/incidents//state", `{"state":"Closed"}`, http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"GET", "/api/v1/incidents//", "", http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"GET", "/api/v1//incidents?limit=1", "", http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"GET", "//api/v1/incidents", "", http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"GET", "/api/v1/./incidents", "", http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"GET", "/api/v1/incidents/x/../inc-07", "", http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"GET", "/api/v1/incidents", "", http.StatusOK, ""},
		{"GET", "/api/v1/incidents/inc-07", "", http.StatusOK, ""},
		{"GET", "/api/v1/incidents/", "", http.StatusNotFound, api.CodeNoSuchEndpoint},
		{"POST", "/api/v1/incidents/inc-07/state", `{"state":"Investigating"}`, http.StatusOK, ""},
	} {
		code, e := answer(t, c, tc.method, tc.target, tc.body)
		if code != tc.code || e.Code != tc.errCode {
			t.Errorf("%s %s: %d %+v, want %d code %q", tc.method, tc.target, code, e, tc.code, tc.errCode)
		}
	}
	// Without the wrapper, the mux redirects: what Canonical is for.
	if code, _ := answerRaw(mux, "POST", "/api/v1/incidents//state"); code != http.StatusTemporaryRedirect {
		t.Errorf("bare mux: %d, want 307 (has http.ServeMux stopped redirecting?)", code)
	}
}

func answerRaw(h http.Handler, method, target string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Body.String()
}

// TestReadOnly: GET and HEAD pass, another method is a JSON 405 with Allow.
func TestReadOnly(t *testing.T) {
	h := api.ReadOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, m := range []string{"GET", "HEAD"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/healthz", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: %d", m, rec.Code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/healthz", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

// TestClientCommaSource: a source with a comma cannot be sent as a filter;
// the client says so instead of asking for two sources.
func TestClientCommaSource(t *testing.T) {
	s, _ := fixture(t)
	srv := httptest.NewServer(api.New(s, zaptest.NewLogger(t)))
	defer srv.Close()
	_, err := api.NewClient(srv.URL, nil).Count(context.Background(), storage.Filter{Sources: []string{"guard,rails"}})
	var pe *api.ParamError
	if !errors.As(err, &pe) || pe.Param != "source" {
		t.Fatalf("Count of a comma source: %v, want a ParamError naming source", err)
	}
}
