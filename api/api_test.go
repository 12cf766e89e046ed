package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture writes 30 incidents: sources s0..s2, severities P0..P4, types and
// states cycling, last_seen one minute apart (i minutes after base), ten
// identities of three incidents each (fp(i%10); i reopens i-10).
func fixture(t *testing.T) (*memory.Store, []*incident.Incident) {
	t.Helper()
	s := memory.New()
	var all []*incident.Incident
	for i := range 30 {
		ls := base.Add(time.Duration(i) * time.Minute)
		in := &incident.Incident{
			ID: fmt.Sprintf("inc-%02d", i), Fingerprint: fp(i % 10),
			Title: fmt.Sprintf("incident %d", i), Source: fmt.Sprintf("s%d", i%3),
			Type: incident.Types[i%len(incident.Types)], Severity: incident.Severity(i % 5),
			PeakSeverity: incident.Severity(i % 5), State: incident.States[i%len(incident.States)],
			Resources: []string{"r"}, FirstSeen: ls, LastSeen: ls, CreatedAt: ls, UpdatedAt: ls,
			OccurrenceCount: 1, LatestEventAt: ls, LatestEventID: fmt.Sprintf("ev-%d", i), Version: 1,
		}
		if i >= 10 {
			in.ReopenOf = all[i-10].ID
		}
		all = append(all, in)
	}
	if err := s.Apply(context.Background(), storage.Batch{Incidents: all, EventIDs: []string{"e"}, At: base}); err != nil {
		t.Fatal(err)
	}
	return s, all
}

// fp is the fingerprint of fixture identity n.
func fp(n int) string { return fmt.Sprintf("v1:%032x", n) }

func get(t *testing.T, h http.Handler, target string, into any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: content type %q", target, ct)
	}
	if into != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
			t.Fatalf("%s: %v: %s", target, err, rec.Body.String())
		}
	}
	return rec.Code
}

// want returns the ids of the fixture incidents matching keep, newest first.
func want(all []*incident.Incident, keep func(*incident.Incident) bool) []string {
	var ids []string
	for _, in := range all {
		if keep(in) {
			ids = append(ids, in.ID)
		}
	}
	slices.Reverse(ids)
	return ids
}

func ids(r api.ListResponse) []string {
	out := make([]string, len(r.Incidents))
	for i, in := range r.Incidents {
		out[i] = in.ID
	}
	return out
}

func TestListFilters(t *testing.T) {
	s, all := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	cases := []struct {
		query string
		keep  func(*incident.Incident) bool
	}{
		{"", func(*incident.Incident) bool { return true }},
		{"state=Resolved", func(in *incident.Incident) bool { return in.State == incident.Resolved }},
		{"state=resolved,closed", func(in *incident.Incident) bool { return !in.State.Active() }},
		{"state=detected&state=TRIAGED", func(in *incident.Incident) bool {
			return in.State == incident.Detected || in.State == incident.Triaged
		}},
		{"severity=P0", func(in *incident.Incident) bool { return in.Severity == incident.P0 }},
		{"severity=critical,low", func(in *incident.Incident) bool { return in.Severity == incident.P0 || in.Severity == incident.P3 }},
		{"severity=p1&severity=info", func(in *incident.Incident) bool { return in.Severity == incident.P1 || in.Severity == incident.P4 }},
		{"source=s1", func(in *incident.Incident) bool { return in.Source == "s1" }},
		{"source=s1,s2", func(in *incident.Incident) bool { return in.Source != "s0" }},
		// white space around an item is dropped (README: a source stored
		// with white space around it cannot be filtered on)
		{"source=s1,%20s2%20", func(in *incident.Incident) bool { return in.Source != "s0" }},
		{"type=security", func(in *incident.Incident) bool { return in.Type == incident.Security }},
		{"type=Data&type=performance", func(in *incident.Incident) bool { return in.Type == incident.Data || in.Type == incident.Performance }},
		{"active=true", func(in *incident.Incident) bool { return in.State.Active() }},
		{"active=false", func(in *incident.Incident) bool { return !in.State.Active() }},
		{"since=" + at(20).Format(time.RFC3339), func(in *incident.Incident) bool { return !in.LastSeen.Before(at(20)) }},
		{"since=" + strings.ToLower(at(20).Format(time.RFC3339)), func(in *incident.Incident) bool { return !in.LastSeen.Before(at(20)) }},
		{"until=" + at(5).Format(time.RFC3339), func(in *incident.Incident) bool { return !in.LastSeen.After(at(5)) }},
		{"since=" + at(3).Format(time.RFC3339) + "&until=" + at(9).Format(time.RFC3339Nano), func(in *incident.Incident) bool {
			return !in.LastSeen.Before(at(3)) && !in.LastSeen.After(at(9))
		}},
		{"source=s0&severity=P0,P3&active=true", func(in *incident.Incident) bool {
			return in.Source == "s0" && (in.Severity == incident.P0 || in.Severity == incident.P3) && in.State.Active()
		}},
		{"source=nobody", func(*incident.Incident) bool { return false }},
		{"fingerprint=" + fp(3), func(in *incident.Incident) bool { return in.Fingerprint == fp(3) }},
		{"fingerprint=" + strings.ToUpper(fp(3)), func(in *incident.Incident) bool { return in.Fingerprint == fp(3) }},
		{"fingerprint=" + fp(3) + "," + fp(4) + "&fingerprint=" + fp(5), func(in *incident.Incident) bool {
			return in.Fingerprint == fp(3) || in.Fingerprint == fp(4) || in.Fingerprint == fp(5)
		}},
		{"fingerprint=" + fp(3) + "&source=s0", func(in *incident.Incident) bool { return in.Fingerprint == fp(3) && in.Source == "s0" }},
		{"fingerprint=" + fp(99), func(*incident.Incident) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			var r api.ListResponse
			if code := get(t, h, "/api/v1/incidents?"+c.query, &r); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			w := want(all, c.keep)
			if r.Total != int64(len(w)) {
				t.Fatalf("total %d, want %d", r.Total, len(w))
			}
			if len(w) > api.DefaultLimit {
				w = w[:api.DefaultLimit]
			}
			if got := ids(r); !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
				t.Fatalf("ids %v\nwant %v", got, w)
			}
			if r.Incidents == nil {
				t.Fatal("incidents is null, want []")
			}
		})
	}
}

func TestPagination(t *testing.T) {
	s, all := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	w := want(all, func(*incident.Incident) bool { return true })
	var seen []string
	for off := 0; off < 35; off += 7 {
		var r api.ListResponse
		if code := get(t, h, fmt.Sprintf("/api/v1/incidents?limit=7&offset=%d", off), &r); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if r.Total != 30 {
			t.Fatalf("total %d", r.Total)
		}
		seen = append(seen, ids(r)...)
	}
	if !slices.Equal(seen, w) {
		t.Fatalf("pages %v\nwant %v", seen, w)
	}
	var r api.ListResponse
	get(t, h, "/api/v1/incidents?limit=1000", &r)
	if len(r.Incidents) != 30 {
		t.Fatalf("limit=1000 gave %d", len(r.Incidents))
	}
}

func TestBadParameters(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	for _, c := range []struct{ query, param string }{
		{"state=open", "state"},
		{"severity=P5", "severity"},
		{"severity=urgent", "severity"},
		{"type=Network", "type"},
		{"active=maybe", "active"},
		{"active=true&active=false", "active"},
		{"since=yesterday", "since"},
		{"active=1", "active"},
		{"active=T", "active"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"offset=-1", "offset"},
		{"sevrity=P1", "sevrity"},
		{"fingerprint=v1:fp03", "fingerprint"},
		{"fingerprint=" + fp(3)[:34], "fingerprint"},
		{"fingerprint=" + fp(3) + ",abc", "fingerprint"},
		{"fingerprint=" + strings.TrimPrefix(fp(3), "v1:"), "fingerprint"},
		{"fingerprint=", "fingerprint"},
		{"fingerprint=,", "fingerprint"},
		{"severity=", "severity"},
		{"state=%20", "state"},
		{"source=", "source"},
		{"type=&severity=P1", "type"},
		{"source=" + strings.Repeat("s0,", api.MaxFilterValues) + "s1", "source"},
		{strings.Repeat("fingerprint="+fp(1)+"&", api.MaxFilterValues) + "fingerprint=" + fp(2), "fingerprint"},
	} {
		t.Run(c.query[:min(len(c.query), 60)], func(t *testing.T) {
			var e api.ErrorResponse
			if code := get(t, h, "/api/v1/incidents?"+c.query, &e); code != http.StatusBadRequest {
				t.Fatalf("status %d", code)
			}
			if e.Parameter != c.param || e.Error == "" {
				t.Fatalf("error %+v, want parameter %q", e, c.param)
			}
		})
	}
}

// TestFilterValuesAtTheLimit: MaxFilterValues values of a parameter are
// served (one more is a 400: TestBadParameters).
func TestFilterValuesAtTheLimit(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	var r api.ListResponse
	q := "source=" + strings.Repeat("nosuch,", api.MaxFilterValues-1) + "s1"
	if code := get(t, h, "/api/v1/incidents?"+q, &r); code != http.StatusOK || r.Total != 10 {
		t.Fatalf("status %d, total %d, want 200 and 10", code, r.Total)
	}
}

func TestGet(t *testing.T) {
	s, all := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	var in incident.Incident
	if code := get(t, h, "/api/v1/incidents/inc-07", &in); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if in.ID != "inc-07" || in.Title != all[7].Title || in.Severity != all[7].Severity || !in.LastSeen.Equal(all[7].LastSeen) {
		t.Fatalf("got %+v", in)
	}
	// Every field is present, unset ones as null, in the item and in lists.
	var raw map[string]any
	get(t, h, "/api/v1/incidents/inc-07", &raw)
	var page struct{ Incidents []map[string]any }
	get(t, h, "/api/v1/incidents?limit=1", &page)
	for _, m := range []map[string]any{raw, page.Incidents[0]} {
		for _, k := range []string{"dedup_key", "description", "reopen_of", "resolved_at", "resolved_by", "acknowledged_at", "last_value", "unit", "labels", "late_count"} {
			if _, ok := m[k]; !ok {
				t.Errorf("key %q missing: %v", k, m)
			}
		}
	}
	var e api.ErrorResponse
	if code := get(t, h, "/api/v1/incidents/"+url.PathEscape("no such"), &e); code != http.StatusNotFound || e.Error == "" {
		t.Fatalf("unknown id: %d %+v", code, e)
	}
	if code := get(t, h, "/api/v1/incidents/a/b", &e); code != http.StatusNotFound {
		t.Fatalf("nested path: %d", code)
	}
}

func TestQueryValuesRoundTrip(t *testing.T) {
	in := "state=Detected&state=Resolved&severity=P0&source=a&type=Security&fingerprint=" + fp(1) + "," + fp(2) +
		"&active=true&since=2026-01-01T00:00:00Z&limit=10&offset=20"
	v, _ := url.ParseQuery(in)
	q, err := api.ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := api.ParseQuery(q.Values())
	if err != nil {
		t.Fatal(err)
	}
	if q.Values().Encode() != q2.Values().Encode() || *q2.Filter.Active != true || q2.Page != q.Page ||
		!slices.Equal(q2.Filter.Fingerprints, []string{fp(1), fp(2)}) {
		t.Fatalf("round trip:\n%v\n%v", q, q2)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	_ = s.Close()
	var e api.ErrorResponse
	if code := get(t, h, "/api/v1/incidents", &e); code != http.StatusServiceUnavailable {
		t.Fatalf("closed store: %d %+v", code, e)
	}
}

func TestClient(t *testing.T) {
	s, all := fixture(t)
	srv := httptest.NewServer(api.New(s, zaptest.NewLogger(t)))
	defer srv.Close()
	c := api.NewClient(srv.URL+"/", nil)
	ctx := context.Background()
	active := true
	f := storage.Filter{Sources: []string{"s1"}, Active: &active}
	got, err := c.List(ctx, f, storage.Page{Limit: 3, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := want(all, func(in *incident.Incident) bool { return in.Source == "s1" && in.State.Active() })
	if ids := ids(api.ListResponse{Incidents: got}); !slices.Equal(ids, w[1:4]) {
		t.Fatalf("List %v, want %v", ids, w[1:4])
	}
	n, err := c.Count(ctx, f)
	if err != nil || n != int64(len(w)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(w))
	}
	in, err := c.Get(ctx, "inc-03")
	if err != nil || in.ID != "inc-03" {
		t.Fatalf("Get: %v %v", in, err)
	}
	if _, err := c.Get(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) || strings.Count(err.Error(), "not found") != 1 {
		t.Fatalf("Get missing: %v (want ErrNotFound, saying \"not found\" once)", err)
	}
	got, err = c.List(ctx, storage.Filter{Fingerprints: []string{fp(7)}}, storage.Page{})
	if w := want(all, func(in *incident.Incident) bool { return in.Fingerprint == fp(7) }); err != nil || !slices.Equal(ids(api.ListResponse{Incidents: got}), w) {
		t.Fatalf("List by fingerprint: %v %v, want %v", ids(api.ListResponse{Incidents: got}), err, w)
	}
	var pe *api.ParamError
	if _, err := c.Query(ctx, api.Query{Page: storage.Page{Limit: 5000}}); !errors.As(err, &pe) || pe.Param != "limit" {
		t.Fatalf("bad limit: %v", err)
	}
}

// TestMethodsAndUnknownPaths: another method on an API path is a JSON 405
// with Allow; any path the worker does not serve is a JSON 404, inside
// /api/v1 or not, once the API is registered on the worker's mux.
func TestMethodsAndUnknownPaths(t *testing.T) {
	s, _ := fixture(t)
	mux := http.NewServeMux()
	mux.Handle("/metrics", http.NotFoundHandler()) // another route of the worker's mux
	api.New(s, zaptest.NewLogger(t)).Register(mux)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, "/api/v1/incidents", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/v1/incidents/inc-07", http.StatusMethodNotAllowed},
		{http.MethodHead, "/api/v1/incidents", http.StatusOK},
		{http.MethodGet, "/api/v1nope", http.StatusNotFound},
		{http.MethodGet, "/nothing/here", http.StatusNotFound},
		{http.MethodPost, "/api/v2/incidents", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: content type %q", tc.method, tc.path, ct)
		}
		if tc.code == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, rec.Header().Get("Allow"))
		}
	}
}

// TestClientErrorsMaskUserinfo: a worker that cannot be reached is named in
// the client's errors with a token or password in its URL masked (net/http
// masks only the password).
func TestClientErrorsMaskUserinfo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	ctx := context.Background()
	for _, c := range []struct{ userinfo, secret, shown string }{
		{"tok3n", "tok3n", "http://xxxxx@" + addr + "/"},
		{"bob:s3cretpw", "s3cretpw", "http://bob:xxxxx@" + addr + "/"},
	} {
		cl := api.NewClient("http://"+c.userinfo+"@"+addr, nil)
		_, getErr := cl.Get(ctx, "inc-a")
		_, listErr := cl.List(ctx, storage.Filter{}, storage.Page{})
		_, _, setErr := cl.SetState(ctx, "inc-a", incident.Closed)
		scanErr := cl.Scan(ctx, func(*incident.Incident) error { return nil })
		for _, err := range []error{getErr, listErr, setErr, scanErr} {
			if err == nil || strings.Contains(err.Error(), c.secret) || !strings.Contains(err.Error(), c.shown) {
				t.Errorf("error %v: want %q in it and no %q", err, c.shown, c.secret)
			}
		}
	}
}

// TestClientUserAgent: every request says Client.UserAgent; without one,
// net/http's default.
func TestClientUserAgent(t *testing.T) {
	s, all := fixture(t)
	h := api.New(s, zaptest.NewLogger(t))
	h.EnableWrites(s, nil)
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.UserAgent())
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	c := api.NewClient(srv.URL, nil)
	c.UserAgent = "incidentctl/v9.9.9"
	if _, err := c.Get(ctx, all[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Count(ctx, storage.Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Scan(ctx, func(*incident.Incident) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.SetState(ctx, all[0].ID, incident.Closed); err != nil {
		t.Fatal(err)
	}
	if _, err := api.NewClient(srv.URL, nil).Count(ctx, storage.Filter{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET incidentctl/v9.9.9", "GET incidentctl/v9.9.9", "GET incidentctl/v9.9.9", "POST incidentctl/v9.9.9", "GET Go-http-client/1.1"}
	if !slices.Equal(seen, want) {
		t.Fatalf("requests %q, want %q", seen, want)
	}
}

// blockingList is a memory store whose List waits for release.
type blockingList struct {
	*memory.Store
	entered chan struct{}
	release chan struct{}
}

func (b blockingList) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.List(ctx, f, p)
}

// TestQueryLimit: past the limit of queries served at once, a list or get
// waits for its turn, then is answered 503 with Retry-After; the query in
// progress is not disturbed, and once it ends the next is served.
func TestQueryLimit(t *testing.T) {
	if api.MaxQueries() < 2 {
		t.Fatalf("MaxQueries %d, want at least 2", api.MaxQueries())
	}
	s, _ := fixture(t)
	b := blockingList{s, make(chan struct{}, 1), make(chan struct{})}
	h := api.New(b, zaptest.NewLogger(t)).SetQueryLimit(1, 100*time.Millisecond)
	first := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil))
		first <- rec.Code
	}()
	<-b.entered
	for _, target := range []string{"/api/v1/incidents", "/api/v1/incidents/inc-01"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "busy") {
			t.Fatalf("%s past the limit: %d Retry-After %q %s", target, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
	close(b.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("the query in progress: %d", code)
	}
	var one map[string]any
	if code := get(t, h, "/api/v1/incidents/inc-01", &one); code != http.StatusOK {
		t.Fatalf("get after the limit freed: %d", code)
	}
}

// TestQueryLimitSlowReaders: the query limit counts the store's work, not
// the sending of the answer: with a limit of 1, clients that asked for
// answers far larger than the socket buffers and stopped reading them (one
// byte read: their answer is being written) leave a list and a get served,
// not answered 503 busy until the write timeout cuts them off.
func TestQueryLimitSlowReaders(t *testing.T) {
	s := memory.New()
	desc := strings.Repeat("x", 16000)
	var all []*incident.Incident
	for i := range 1000 {
		ls := base.Add(time.Duration(i) * time.Second)
		all = append(all, &incident.Incident{
			ID: fmt.Sprintf("big-%04d", i), Fingerprint: fp(i), Title: "big", Description: desc,
			Source: "s", Type: incident.Types[0], Severity: incident.P2, PeakSeverity: incident.P2,
			State: incident.States[0], Resources: []string{"r"}, FirstSeen: ls, LastSeen: ls,
			CreatedAt: ls, UpdatedAt: ls, OccurrenceCount: 1, LatestEventAt: ls,
			LatestEventID: fmt.Sprintf("ev-%d", i), Version: 1,
		})
	}
	if err := s.Apply(context.Background(), storage.Batch{Incidents: all, EventIDs: []string{"e"}, At: base}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(s, zaptest.NewLogger(t)).SetQueryLimit(1, 2*time.Second))
	defer srv.Close()
	var stalled []*net.TCPConn
	defer func() {
		for _, c := range stalled {
			_ = c.Close() // before srv.Close, which waits for their requests
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		stalled = append(stalled, tc)
		_ = tc.SetReadBuffer(4096)
		if _, err := fmt.Fprintf(c, "GET /api/v1/incidents?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatalf("stalled client: %v", err)
		}
	}
	for _, target := range []string{"/api/v1/incidents?limit=1", "/api/v1/incidents/big-0001"} {
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("%s beside clients that stopped reading: %d %v %v", target, resp.StatusCode, err, body["error"])
		}
	}
}

// TestClientRetriesBusy: the client (incidentctl's queries) sends a list or
// get again when a worker at its query limit answers 503 with Retry-After,
// and gets the answer once a turn is free; a 503 without Retry-After (a
// closed store) is the error at once.
func TestClientRetriesBusy(t *testing.T) {
	s, _ := fixture(t)
	b := blockingList{s, make(chan struct{}, 1), make(chan struct{})}
	h := api.New(b, zaptest.NewLogger(t)).SetQueryLimit(1, 50*time.Millisecond)
	var lists atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.ListPath {
			lists.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	released := false
	defer func() {
		if !released { // a failure below: let the held request end, so srv.Close returns
			close(b.release)
		}
	}()
	holder := make(chan error, 1)
	go func() {
		_, err := api.NewClient(srv.URL, nil).List(context.Background(), storage.Filter{}, storage.Page{Limit: 1})
		holder <- err
	}()
	<-b.entered // the only turn is taken
	got := make(chan error, 1)
	go func() {
		_, err := api.NewClient(srv.URL, nil).Count(context.Background(), storage.Filter{})
		got <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for lists.Load() < 3 { // the count's first request was answered busy and it came back
		if time.Now().After(deadline) {
			t.Fatalf("the client did not retry a busy answer: %d list requests", lists.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(b.release)
	released = true
	if err := <-holder; err != nil {
		t.Fatalf("the query holding the turn: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("count retried after a busy answer: %v", err)
	}

	closed, _ := fixture(t)
	_ = closed.Close()
	var closedLists atomic.Int32
	hc := api.New(closed, zaptest.NewLogger(t))
	srvClosed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closedLists.Add(1)
		hc.ServeHTTP(w, r)
	}))
	defer srvClosed.Close()
	if _, err := api.NewClient(srvClosed.URL, nil).Count(context.Background(), storage.Filter{}); err == nil || !strings.Contains(err.Error(), "503") || closedLists.Load() != 1 {
		t.Fatalf("closed store: %v after %d requests, want its 503 after 1", err, closedLists.Load())
	}
}
