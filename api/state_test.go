package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// folded returns a memory store holding what the fold made of one trigger
// for each of the keys (incident ids inc-<key>), all Detected.
func folded(t *testing.T, keys ...string) *memory.Store {
	t.Helper()
	s := memory.New()
	t.Cleanup(func() { _ = s.Close() })
	i := 0
	f := dedupe.NewFolder(dedupe.DefaultWindow, func() string { i++; return "inc-" + keys[i-1] })
	var evs []dedupe.Keyed
	for _, k := range keys {
		evs = append(evs, dedupe.Keyed{Fingerprint: "fp-" + k, Event: incident.Event{ID: "e-" + k, Source: "s", Title: k, OccurredAt: base}})
	}
	if _, _, err := storage.Ingest(context.Background(), s, f, evs, func() time.Time { return base }); err != nil {
		t.Fatal(err)
	}
	return s
}

// post sends body to the state path of id and decodes the answer into into.
func post(t *testing.T, h http.Handler, id, body string, into any) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/incidents/"+id+"/state", strings.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("POST %s %s: content type %q", id, body, ct)
	}
	if into != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
			t.Fatalf("POST %s %s: %v: %s", id, body, err, rec.Body.String())
		}
	}
	return rec
}

func TestSetStateEndpoint(t *testing.T) {
	s := folded(t, "a", "b")
	var observed []string
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, func(from, to incident.State) {
		observed = append(observed, from.String()+">"+to.String())
	})
	before := time.Now()

	var in map[string]any
	rec := post(t, h, "inc-a", `{"state":"investigating"}`, &in)
	if rec.Code != http.StatusOK || in["state"] != "Investigating" || in["version"] != 2.0 || in["acknowledged_at"] == nil || rec.Header().Get(api.ChangedHeader) != "true" {
		t.Fatalf("Detected -> Investigating: %d %s %v", rec.Code, rec.Header().Get(api.ChangedHeader), in)
	}
	if _, ok := in["resolved_at"]; !ok { // the incident.View: every member, null when unset
		t.Fatalf("answer is not the full incident view: %v", in)
	}
	stored, err := s.Get(context.Background(), "inc-a")
	if err != nil || stored.State != incident.Investigating || stored.AcknowledgedAt.Before(before) {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	// The same state again: 200, nothing written, nothing counted.
	rec = post(t, h, "inc-a", `{"state":"Investigating"}`, &in)
	if rec.Code != http.StatusOK || in["version"] != 2.0 || rec.Header().Get(api.ChangedHeader) != "false" {
		t.Fatalf("same state: %d %s %v", rec.Code, rec.Header().Get(api.ChangedHeader), in)
	}

	rec = post(t, h, "inc-a", ` {"state": "Resolved"} `, &in)
	if rec.Code != http.StatusOK || in["state"] != "Resolved" || in["resolved_by"] != "operator" || in["resolved_at"] == nil {
		t.Fatalf("-> Resolved: %d %v", rec.Code, in)
	}

	// Refused by the lifecycle: 409 naming both states.
	var e api.ErrorResponse
	rec = post(t, h, "inc-a", `{"state":"Remediating"}`, &e)
	if rec.Code != http.StatusConflict || e.From != "Resolved" || e.To != "Remediating" ||
		!strings.Contains(e.Error, `incident "inc-a": Resolved -> Remediating is not allowed`) {
		t.Fatalf("Resolved -> Remediating: %d %+v", rec.Code, e)
	}
	if rec = post(t, h, "inc-a", `{"state":"Closed"}`, &in); rec.Code != http.StatusOK || in["state"] != "Closed" || in["resolved_by"] != "operator" {
		t.Fatalf("-> Closed: %d %v", rec.Code, in)
	}
	e = api.ErrorResponse{}
	if rec = post(t, h, "inc-a", `{"state":"Resolved"}`, &e); rec.Code != http.StatusConflict || !strings.Contains(e.Error, "Closed is final") || e.From != "Closed" {
		t.Fatalf("Closed -> Resolved: %d %+v", rec.Code, e)
	}

	// Unknown id: 404.
	e = api.ErrorResponse{}
	if rec = post(t, h, "nope", `{"state":"Closed"}`, &e); rec.Code != http.StatusNotFound || e.Error != `incident "nope" not found` {
		t.Fatalf("unknown id: %d %+v", rec.Code, e)
	}
	if want := []string{"Detected>Investigating", "Investigating>Resolved", "Resolved>Closed"}; fmt.Sprint(observed) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", observed, want)
	}
	b, err := s.Get(context.Background(), "inc-b")
	if err != nil || b.State != incident.Detected || b.Version != 1 {
		t.Fatalf("the other incident changed: %+v, %v", b, err)
	}
}

func TestSetStateBadRequests(t *testing.T) {
	s := folded(t, "a")
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil)
	for _, tc := range []struct {
		body, field, says string
	}{
		{"", "", "body: empty"},
		{"   ", "", "body: empty"},
		{"state=Closed", "", "body: want exactly one JSON object"},
		{`["Closed"]`, "", "body: want exactly one JSON object"},
		{`[1]`, "", "body: want exactly one JSON object"},
		{`{"state":"Closed"} {"state":"Closed"}`, "", "body: more after the JSON object"},
		{`{"state":"Closed"}}`, "", "body: more after the JSON object"},
		{`{"state":"Closed"}]]]garbage`, "", "body: more after the JSON object"},
		{`{"state":"Investigating","state":"Closed"}`, "state", "field state: given twice"},
		{`{"STATE":"Closed"}`, "STATE", `field STATE: unknown member`},
		{`{"state":"Closed"`, "", "body: want exactly one JSON object"},
		{`{}`, "state", "field state: missing"},
		{`{"state":null}`, "state", "field state: want a string"},
		{`{"state":5}`, "state", "field state: want a string"},
		{`{"state":"Bogus"}`, "state", `unknown state "Bogus" (want one of Triaged, Investigating, Remediating, Resolved, Closed)`},
		{`{"state":"Detected"}`, "state", "Detected is no state an operator sets"},
		{`{"state":"Closed","note":"x"}`, "note", `field note: unknown member: the body has only "state"`},
		{`{"state":"` + strings.Repeat("x", 5000) + `"}`, "", "body: larger than"},
	} {
		var e api.ErrorResponse
		rec := post(t, h, "inc-a", tc.body, &e)
		if rec.Code != http.StatusBadRequest || e.Field != tc.field || !strings.Contains(e.Error, tc.says) {
			t.Errorf("body %.40q: %d %+v; want 400 field %q saying %q", tc.body, rec.Code, e, tc.field, tc.says)
		}
	}
	// A bad body is a 400 before the id is looked at.
	if rec := post(t, h, "nope", `{"state":"Bogus"}`, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("bad body, unknown id: %d, want 400", rec.Code)
	}
	if in, err := s.Get(context.Background(), "inc-a"); err != nil || in.Version != 1 {
		t.Fatalf("a bad request changed the incident: %+v, %v", in, err)
	}
}

// TestSetStateDisabledAndMethods: without EnableWrites the endpoint
// answers 403 saying how to enable it; other methods on it are 405 with
// Allow: POST whether writes are on or not, and the read paths keep their
// 405 with Allow: GET, HEAD.
func TestSetStateDisabledAndMethods(t *testing.T) {
	s := folded(t, "a")
	for _, writes := range []bool{false, true} {
		t.Run(fmt.Sprintf("writes=%v", writes), func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/metrics", http.NotFoundHandler())
			h := api.New(s, zaptest.NewLogger(t))
			if writes {
				h.EnableWrites(s, nil)
			}
			h.Register(mux)
			if !writes {
				var e api.ErrorResponse
				rec := post(t, mux, "inc-a", `{"state":"Closed"}`, &e)
				if rec.Code != http.StatusForbidden || !strings.Contains(e.Error, "http.allow_writes = true") || !strings.Contains(e.Error, "HTTP_ALLOW_WRITES=true") {
					t.Fatalf("disabled: %d %+v", rec.Code, e)
				}
				if in, err := s.Get(context.Background(), "inc-a"); err != nil || in.State != incident.Detected {
					t.Fatalf("a refused write changed the incident: %+v, %v", in, err)
				}
			}
			for _, tc := range []struct {
				method, path, allow string
				code                int
			}{
				{http.MethodGet, "/api/v1/incidents/inc-a/state", "POST", http.StatusMethodNotAllowed},
				{http.MethodPut, "/api/v1/incidents/inc-a/state", "POST", http.StatusMethodNotAllowed},
				{http.MethodDelete, "/api/v1/incidents/inc-a/state", "POST", http.StatusMethodNotAllowed},
				{http.MethodPost, "/api/v1/incidents/inc-a", "GET, HEAD", http.StatusMethodNotAllowed},
				{http.MethodPatch, "/api/v1/incidents/inc-a", "GET, HEAD", http.StatusMethodNotAllowed},
				{http.MethodPost, "/api/v1/incidents", "GET, HEAD", http.StatusMethodNotAllowed},
				{http.MethodGet, "/api/v1/incidents/inc-a", "", http.StatusOK},
				{http.MethodPost, "/api/v1/incidents/inc-a/state/x", "", http.StatusNotFound},
				{http.MethodPost, "/api/v1/incidents/inc-a/status", "", http.StatusNotFound},
			} {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"state":"Closed"}`)))
				if rec.Code != tc.code || rec.Header().Get("Allow") != tc.allow || rec.Header().Get("Content-Type") != "application/json" {
					t.Errorf("%s %s: %d Allow %q (%s); want %d Allow %q", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"),
						rec.Header().Get("Content-Type"), tc.code, tc.allow)
				}
			}
		})
	}
}

func TestClientSetState(t *testing.T) {
	s := folded(t, "a")
	on := httptest.NewServer(api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil))
	defer on.Close()
	off := httptest.NewServer(api.New(s, zaptest.NewLogger(t)))
	defer off.Close()
	ctx := context.Background()
	c := api.NewClient(on.URL, nil)

	in, changed, err := c.SetState(ctx, "inc-a", incident.Remediating)
	if err != nil || !changed || in.State != incident.Remediating || in.AcknowledgedAt == nil || in.Version != 2 {
		t.Fatalf("SetState = %+v, %v, %v", in, changed, err)
	}
	if in, changed, err = c.SetState(ctx, "inc-a", incident.Remediating); err != nil || changed || in.Version != 2 {
		t.Fatalf("same state: %+v, %v, %v", in, changed, err)
	}
	if _, _, err = c.SetState(ctx, "inc-a", incident.Closed); err != nil {
		t.Fatal(err)
	}
	var te *incident.TransitionError
	_, _, err = c.SetState(ctx, "inc-a", incident.Triaged)
	if !errors.As(err, &te) || te.From != incident.Closed || te.To != incident.Triaged || te.ID != "inc-a" || te.Reason != "Closed is final" {
		t.Fatalf("refused: %v (%+v)", err, te)
	}
	if err.Error() != `incident "inc-a": Closed -> Triaged is not allowed: Closed is final` {
		t.Fatalf("refused: %q", err)
	}
	if _, _, err = c.SetState(ctx, "nope", incident.Closed); !errors.Is(err, storage.ErrNotFound) || err.Error() != `incident "nope" not found` {
		t.Fatalf("unknown id: %v", err)
	}
	if _, _, err = api.NewClient(off.URL, nil).SetState(ctx, "inc-a", incident.Closed); !errors.Is(err, api.ErrWritesDisabled) || !strings.Contains(err.Error(), "http.allow_writes") {
		t.Fatalf("writes disabled: %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	for _, st := range incident.OperatorTargets {
		for _, v := range []string{st.String(), strings.ToLower(st.String()), " " + strings.ToUpper(st.String())} {
			if got, err := api.ParseTarget(v); err != nil || got != st {
				t.Errorf("ParseTarget(%q) = %v, %v", v, got, err)
			}
		}
	}
	for _, v := range []string{"", "Detected", "open", "Resolved2"} {
		if _, err := api.ParseTarget(v); err == nil {
			t.Errorf("ParseTarget(%q) accepted", v)
		}
	}
}

// TestSetStateStopsAtShutdown: once the worker starts shutting down (its
// store is about to close), a state change is a 503 with Retry-After, not
// a 500 from a closed store; reads go on.
func TestSetStateStopsAtShutdown(t *testing.T) {
	s := folded(t, "a")
	h := api.New(s, zaptest.NewLogger(t)).EnableWrites(s, nil)
	h.StopWrites()
	var e api.ErrorResponse
	rec := post(t, h, "inc-a", `{"state":"Investigating"}`, &e)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(e.Error, "shutting down") {
		t.Fatalf("state change during shutdown: %d %q %+v", rec.Code, rec.Header().Get("Retry-After"), e)
	}
	if in, err := s.Get(context.Background(), "inc-a"); err != nil || in.Version != 1 {
		t.Fatalf("the refused change wrote: %+v, %v", in, err)
	}
	if code := get(t, h, "/api/v1/incidents/inc-a", nil); code != http.StatusOK {
		t.Fatalf("read during shutdown: %d", code)
	}
}
