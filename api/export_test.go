package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestExport: GET /api/v1/export streams every incident as a JSON line with
// the count trailer, and Client.Scan reads them back as stored.
func TestExport(t *testing.T) {
	s, all := fixture(t)
	srv := httptest.NewServer(api.New(s, zaptest.NewLogger(t)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + api.ExportPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines++
		if !strings.HasPrefix(sc.Text(), `{"id":"inc-`) || !strings.Contains(sc.Text(), `"resolved_at":`) {
			t.Fatalf("line %d is not an incident view: %s", lines, sc.Text())
		}
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	if lines != len(all) || resp.Trailer.Get(api.ExportCountTrailer) != "30" {
		t.Fatalf("%d lines, trailer %q, want 30 and \"30\"", lines, resp.Trailer.Get(api.ExportCountTrailer))
	}

	got := map[string]*incident.Incident{}
	if err := api.NewClient(srv.URL, nil).Scan(context.Background(), func(in *incident.Incident) error {
		got[in.ID] = in
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range all {
		if d := storetest.Diff(want, got[want.ID]); d != "" {
			t.Errorf("%s: %s", want.ID, d)
		}
	}

	var e api.ErrorResponse
	rec := httptest.NewRecorder()
	api.New(s, zaptest.NewLogger(t)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.ExportPath+"?limit=5", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"parameter":"limit"`) {
		t.Fatalf("export with a parameter: %d %s %v", rec.Code, rec.Body.String(), e)
	}
}

// failingScan is a memory store whose Scan passes the stored incidents
// over and over, then fails after `after` of them.
type failingScan struct {
	*memory.Store
	after int
}

var errDiskOnFire = errors.New("disk on fire")

func (f failingScan) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	n := 0
	for {
		err := f.Store.Scan(ctx, func(in *incident.Incident) error {
			if n == f.after {
				return errDiskOnFire
			}
			n++
			return fn(in)
		})
		if err != nil {
			return err
		}
	}
}

// TestExportFailure: a store failing before anything was sent answers a
// JSON 500; failing half-way (after more than the write buffer went out)
// breaks the body, and Client.Scan reports the export incomplete instead
// of returning what came.
func TestExportFailure(t *testing.T) {
	s, _ := fixture(t)
	for _, tc := range []struct {
		name  string
		after int
		want  string
	}{
		{"before the first byte", 5, "500 Internal Server Error: store: disk on fire"},
		{"half-way", 2000, "api export: after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(api.New(failingScan{s, tc.after}, zaptest.NewLogger(t)))
			defer srv.Close()
			n := 0
			err := api.NewClient(srv.URL, nil).Scan(context.Background(), func(*incident.Incident) error { n++; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("scan = %v after %d incidents, want an error containing %q", err, n, tc.want)
			}
		})
	}
}

// TestExportOldWorker: a worker without the endpoint (whose list answers)
// gives ErrExportUnsupported, so incidentctl can fall back to paging; a
// server whose every path is a 404 is no incidentd API (ErrNotAPI).
func TestExportOldWorker(t *testing.T) {
	s, _ := fixture(t)
	old := http.NewServeMux()
	old.Handle(api.ListPath, api.New(s, zaptest.NewLogger(t)))
	old.Handle("/", api.NotFoundHandler())
	for _, tc := range []struct {
		name string
		h    http.Handler
		want error
	}{
		{"old worker", old, api.ErrExportUnsupported},
		{"no API", api.NotFoundHandler(), api.ErrNotAPI},
		{"another server", http.NotFoundHandler(), api.ErrNotAPI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			err := api.NewClient(srv.URL, nil).Scan(context.Background(), func(*incident.Incident) error { return nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("scan = %v, want %v", err, tc.want)
			}
		})
	}
}

// endlessScan is a memory store whose Scan passes the stored incidents
// over and over until fn fails, and then sends what it returns on done.
type endlessScan struct {
	*memory.Store
	done chan<- error
}

func (e endlessScan) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	for {
		if err := e.Store.Scan(ctx, fn); err != nil {
			e.done <- err
			return err
		}
	}
}

// TestExportCutsOffAStalledClient: a client that stops reading an export
// is cut off after ExportWriteStall: the store's Scan ends (on Pebble,
// releasing its snapshot) and the connection is closed without the count
// trailer, instead of both waiting for the client for ever.
func TestExportCutsOffAStalledClient(t *testing.T) {
	old := api.ExportWriteStall
	api.ExportWriteStall = 200 * time.Millisecond
	t.Cleanup(func() { api.ExportWriteStall = old })
	s, _ := fixture(t)
	scanned := make(chan error, 1)
	srv := httptest.NewServer(api.New(endlessScan{s, scanned}, zaptest.NewLogger(t)))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", api.ExportPath); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-scanned:
		if err == nil {
			t.Fatal("scan ended without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the export still waits for a client that does not read")
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after the export was cut off (%d bytes read)", len(b))
	}
	if strings.Contains(string(b[max(0, len(b)-200):]), api.ExportCountTrailer) {
		t.Fatal("a cut-off export ends with the count trailer")
	}
}
