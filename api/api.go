// Package api is the worker's HTTP API over the store the pipeline writes:
// queries (GET /api/v1/incidents with filters and pagination, GET
// /api/v1/incidents/{id}) and, when enabled, an operator's state change
// (POST /api/v1/incidents/{id}/state), and an export of every incident (GET
// /api/v1/export). incidentctl get/list/count/state/export use it when a
// worker runs.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Paths served by Handler.
const (
	// ListPath answers the incident list.
	ListPath = "/api/v1/incidents"
	// GetPath answers one incident; {id} is its id.
	GetPath = "/api/v1/incidents/{id}"
)

// Reader is what the API needs from a store.
type Reader interface {
	Get(ctx context.Context, id string) (*incident.Incident, error)
	List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error)
	Count(ctx context.Context, f storage.Filter) (int64, error)
	// Scan calls fn once for every incident; see storage.Store.
	Scan(ctx context.Context, fn func(*incident.Incident) error) error
}

// ListResponse is the body of GET /api/v1/incidents.
type ListResponse struct {
	// Incidents is the requested page, newest last_seen first.
	Incidents []*incident.Incident `json:"incidents"`
	// Total is how many incidents match the filter, ignoring the page.
	Total int64 `json:"total"`
}

// MarshalJSON writes the incidents as incident.View: every field present,
// null when unset. Clients decode them into incident.Incident.
func (r ListResponse) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Incidents []incident.View `json:"incidents"`
		Total     int64           `json:"total"`
	}{incident.NewViews(r.Incidents), r.Total})
}

// Error codes: ErrorResponse.Code of the answers a client must tell apart.
const (
	// CodeIncidentNotFound is the 404 of GetPath and StatePath for an id
	// no incident has.
	CodeIncidentNotFound = "incident_not_found"
	// CodeNoSuchEndpoint is the 404 for a path the worker does not serve.
	CodeNoSuchEndpoint = "no_such_endpoint"
	// CodeWriteLeased is the 409 of StatePath when another writer's write
	// lease outlived storage.LeaseWaitLimit (storage.ErrLeased), not lost
	// races.
	CodeWriteLeased = "write_leased"
)

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Code is set on the answers a client tells apart by more than the
	// status: CodeIncidentNotFound, CodeNoSuchEndpoint, CodeWriteLeased.
	Code string `json:"code,omitempty"`
	// Parameter names the query parameter at fault (400 only).
	Parameter string `json:"parameter,omitempty"`
	// Field names the request body's member at fault (400 only).
	Field string `json:"field,omitempty"`
	// From and To are the states of a refused state change (409 only).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Handler serves the query API.
type Handler struct {
	store Reader
	log   *zap.Logger
	mux   *http.ServeMux
	// writer serves StatePath; nil answers 403 (see EnableWrites).
	writer  storage.Store
	observe func(from, to incident.State)
	// stopped is set by StopWrites: the worker is shutting down.
	stopped atomic.Bool
	// queries holds a token for each list or get being served: at most
	// MaxQueries at once, so that API clients cannot take every core from
	// the ingestion (see queryWait).
	queries chan struct{}
	wait    time.Duration
}

// MaxQueries is how many list and get requests a Handler serves at once:
// the cores Go uses (GOMAXPROCS), at least 2. More wait for their turn, up
// to QueryWait, then are answered 503 with Retry-After: 1. The export is
// not counted: it is one request that streams at its client's pace.
func MaxQueries() int { return max(2, runtime.GOMAXPROCS(0)) }

// QueryWait is how long a list or get waits for its turn.
const QueryWait = 10 * time.Second

// New returns the API handler over store. Its write, StatePath, answers
// 403 until EnableWrites.
func New(store Reader, log *zap.Logger) *Handler {
	h := &Handler{store: store, log: log.Named("api"), mux: http.NewServeMux(),
		queries: make(chan struct{}, MaxQueries()), wait: QueryWait}
	h.mux.HandleFunc("GET "+ListPath, h.limited(h.list))
	h.mux.HandleFunc("GET "+GetPath, h.limited(h.get))
	h.mux.HandleFunc("GET "+ExportPath, h.export)
	h.mux.HandleFunc("POST "+StatePath, h.setState)
	// The same paths with another method: 405 naming the ones allowed
	// (GET serves HEAD too).
	for _, p := range []struct{ path, allow, what string }{
		{ListPath, "GET, HEAD", "it is read (GET)"},
		{GetPath, "GET, HEAD", "it is read (GET); a state change is POST " + ListPath + "/{id}/state"},
		{StatePath, "POST", `a state change is POST {"state":"…"}`},
		{ExportPath, "GET, HEAD", "it is read (GET)"},
	} {
		h.mux.HandleFunc(p.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", p.allow)
			writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: "method " + r.Method + " not allowed on " + r.URL.Path + ": " + p.what})
		})
	}
	h.mux.Handle("/", NotFoundHandler())
	return h
}

// SetQueryLimit sets how many list and get requests h serves at once and
// how long one waits for its turn (tests; the worker keeps MaxQueries and
// QueryWait). Call it before serving.
func (h *Handler) SetQueryLimit(n int, wait time.Duration) *Handler {
	h.queries, h.wait = make(chan struct{}, n), wait
	return h
}

// limited runs f once a query token is free: waiting at most h.wait (then
// 503 with Retry-After: 1), and not at all for a client that went away.
// The token covers the store's work and the encoding of the answer, not
// its sending: f writes into memory (the JSON encoder builds the whole
// answer in memory anyway), the token is given back, and only then is the
// answer written to the client, so that clients that read slowly, or not
// at all, cannot hold every token until the write timeout and get every
// other list and get answered 503.
func (h *Handler) limited(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.queries <- struct{}{}:
		default:
			t := time.NewTimer(h.wait)
			defer t.Stop()
			select {
			case h.queries <- struct{}{}:
			case <-r.Context().Done():
				return
			case <-t.C:
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: fmt.Sprintf("busy: %d queries were being served for %s; retry", cap(h.queries), h.wait)})
				return
			}
		}
		held := &heldAnswer{header: w.Header()}
		func() {
			defer func() { <-h.queries }()
			f(held, r)
		}()
		if held.code == 0 {
			held.code = http.StatusOK
		}
		w.WriteHeader(held.code)
		_, _ = w.Write(held.body.Bytes())
	}
}

// heldAnswer is a ResponseWriter that keeps the answer in memory (headers
// go to the real writer's, which is not written to yet): see limited.
type heldAnswer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (a *heldAnswer) Header() http.Header { return a.header }

func (a *heldAnswer) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
}

func (a *heldAnswer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}

// NotFoundHandler answers every request with the API's JSON 404, naming
// the method and path: what a listener of the worker answers for a path it
// does not serve.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: CodeNoSuchEndpoint})
	})
}

// Canonical serves h only paths in canonical form. A path with an empty
// segment ("//"), "." or ".." answers the JSON 404 of NotFoundHandler,
// which http.ServeMux would otherwise redirect with a bare 307 to the
// cleaned path: "POST /api/v1/incidents/$ID/state" with $ID unset must
// fail loudly, not look like a success to "curl -f".
func Canonical(h http.Handler) http.Handler {
	notFound := NotFoundHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; r.Method != http.MethodConnect && p != cleanPath(p) {
			notFound.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cleanPath is p as http.ServeMux cleans it: rooted, without empty, "."
// and ".." segments, its trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// Register adds the API routes to mux, and makes the API's JSON 404 the
// answer for every path mux has no other route for.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(ListPath, h)
	mux.Handle(ListPath+"/", h)
	mux.Handle(ExportPath, h)
	mux.Handle("/", h)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	v, err := ParseRawQuery(r.URL.RawQuery)
	if err != nil {
		h.badRequest(w, err)
		return
	}
	q, err := ParseQuery(v)
	if err != nil {
		h.badRequest(w, err)
		return
	}
	total, err := h.store.Count(r.Context(), q.Filter)
	if err != nil {
		h.fail(w, err)
		return
	}
	items, err := h.store.List(r.Context(), q.Filter, q.Page)
	if err != nil {
		h.fail(w, err)
		return
	}
	if items == nil {
		items = []*incident.Incident{}
	}
	writeJSON(w, http.StatusOK, ListResponse{Incidents: items, Total: total})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	if err := noParameters(r.URL.RawQuery, GetPath); err != nil {
		h.badRequest(w, err)
		return
	}
	id := r.PathValue("id")
	in, err := GetAnyCase(r.Context(), h.store, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeNotFound(w, id)
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, incident.NewView(in))
}

func (h *Handler) badRequest(w http.ResponseWriter, err error) {
	var pe *ParamError
	if errors.As(err, &pe) {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: pe.Error(), Parameter: pe.Param})
		return
	}
	writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error()})
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, storage.ErrClosed) {
		code = http.StatusServiceUnavailable
	}
	h.log.Warn("query failed", zap.Error(err))
	writeJSON(w, code, ErrorResponse{Error: "store: " + err.Error()})
}

// writeNotFound answers the 404 of an id no incident has.
func writeNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, ErrorResponse{Error: notFoundMessage(id), Code: CodeIncidentNotFound})
}

// ReadOnly serves GET and HEAD requests with h and answers any other
// method 405 with "Allow: GET, HEAD", as the query paths do: the worker
// wraps /healthz, /readyz and the metrics endpoint in it.
func ReadOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: "method " + r.Method + " not allowed on " + r.URL.Path + ": it is read (GET)"})
	})
}

// WriteError answers code with the API's JSON error body, for the
// worker's own answers around the API (app's request limits).
func WriteError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
