package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/natsembed"
)

func testConfig(t *testing.T, backend config.Backend) config.Config {
	cfg := config.Default()
	cfg.State.Backend = backend
	cfg.State.Path = t.TempDir()
	cfg.NATS.EmbeddedListen = "127.0.0.1:0"
	cfg.NATS.EmbeddedStoreDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Consumer.LagPollInterval = config.Duration{Duration: 100 * time.Millisecond}
	return cfg
}

func httpGet(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWorker runs a whole worker on the embedded defaults (ports picked by
// the OS), publishes through its NATS URL and reads back through its HTTP
// API, then shuts it down cleanly.
func TestWorker(t *testing.T) {
	for _, backend := range []config.Backend{config.BackendMemory, config.BackendPebble} {
		t.Run(string(backend), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			a, err := app.New(testConfig(t, backend), zaptest.NewLogger(t), reg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			base := a.HTTPURL()
			waitFor(t, "ready", func() bool { return httpGet(t, base+"/readyz", nil) == http.StatusOK })

			nc, err := nats.Connect(a.NATSURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			for i := range 20 {
				ev := fmt.Sprintf(`{"id":"e%d","source":"gw","type":"Performance","severity":"P%d","title":"slow %d","occurred_at":"2026-02-01T00:00:%02dZ"}`, i, i%5, i%4, i)
				if err := nc.Publish("incidents.events.gw", []byte(ev)); err != nil {
					t.Fatal(err)
				}
			}
			if err := nc.Publish("incidents.events.gw", []byte("not json")); err != nil {
				t.Fatal(err)
			}
			var list api.ListResponse
			waitFor(t, "4 incidents", func() bool {
				return httpGet(t, base+"/api/v1/incidents", &list) == http.StatusOK && list.Total == 4
			})
			var one map[string]any
			if code := httpGet(t, base+"/api/v1/incidents/"+list.Incidents[0].ID, &one); code != http.StatusOK || one["occurrence_count"] != float64(5) {
				t.Fatalf("get: %d %v", code, one)
			}
			var e api.ErrorResponse
			if code := httpGet(t, base+"/api/v1/incidents?severity=P7", &e); code != http.StatusBadRequest || e.Parameter != "severity" {
				t.Fatalf("bad severity: %d %+v", code, e)
			}
			if code := httpGet(t, base+"/healthz", nil); code != http.StatusOK {
				t.Fatalf("/healthz %d", code)
			}
			waitFor(t, "invalid counted in /metrics", func() bool {
				resp, err := http.Get(base + "/metrics")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return strings.Contains(string(b), `incidentd_events_dead_lettered_total{reason="invalid_json"} 1`) &&
					strings.Contains(string(b), "incidentd_events_applied_total 20")
			})
			if a.Metrics() == nil || a.Store() == nil {
				t.Fatal("accessors")
			}
			stopRun(t, cancel, done)
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Fatal("HTTP still serving after shutdown")
			}
		})
	}
}

// TestRunCancelled shuts down at once when the context is already done, and
// releases the listeners.
func TestRunCancelled(t *testing.T) {
	a, err := app.New(testConfig(t, config.BackendMemory), zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := http.Get(a.HTTPURL() + "/healthz"); err == nil {
		t.Fatal("HTTP still serving")
	}
	if nc, err := nats.Connect(a.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("embedded NATS still serving")
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig(t, "nosuch")
	if _, err := app.New(cfg, zaptest.NewLogger(t), nil); err == nil {
		t.Fatal("New accepted an unknown backend")
	}
}

// TestReadyzFollowsNATS runs a worker against an external server (nothing
// embedded), stops that server, and expects /readyz to name NATS.
func TestReadyzFollowsNATS(t *testing.T) {
	srv, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, config.BackendMemory)
	cfg.NATS.URL = srv.ClientURL()
	a, err := app.New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if a.NATSURL() != srv.ClientURL() {
		t.Fatalf("NATSURL %q, want the external %q", a.NATSURL(), srv.ClientURL())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	base := a.HTTPURL()
	waitFor(t, "ready", func() bool { return httpGet(t, base+"/readyz", nil) == http.StatusOK })
	srv.Shutdown()
	var body metrics.ReadyResponse
	waitFor(t, "not ready naming nats", func() bool {
		return httpGet(t, base+"/readyz", &body) == http.StatusServiceUnavailable && body.Failing["nats"] != ""
	})
	t.Logf("/readyz: %+v", body)
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return with NATS gone")
	}
}

// TestMetricsSettings: metrics.path moves the endpoint; metrics.listen
// gives it a listener of its own, where nothing else is served, and takes
// it off http.listen; both listeners stop with the worker.
func TestMetricsSettings(t *testing.T) {
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("path", func(t *testing.T) {
		cfg := testConfig(t, config.BackendMemory)
		cfg.Metrics.Path = "/internal/prom"
		a, err := app.New(cfg, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		waitFor(t, "metrics at the configured path", func() bool { return get(a.HTTPURL()+"/internal/prom") == http.StatusOK })
		if code := get(a.HTTPURL() + "/metrics"); code != http.StatusNotFound {
			t.Errorf("/metrics answered %d with metrics.path moved", code)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("listen", func(t *testing.T) {
		cfg := testConfig(t, config.BackendMemory)
		cfg.Metrics.Listen = "127.0.0.1:0"
		a, err := app.New(cfg, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.MetricsAddr() == a.HTTPAddr() {
			t.Fatalf("metrics on %s, the HTTP listener's address", a.MetricsAddr())
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		murl := "http://" + a.MetricsAddr()
		waitFor(t, "metrics on their own listener", func() bool { return get(murl+"/metrics") == http.StatusOK })
		for url, want := range map[string]int{
			a.HTTPURL() + "/metrics":          http.StatusNotFound,
			a.HTTPURL() + "/healthz":          http.StatusOK,
			murl + "/healthz":                 http.StatusNotFound,
			murl + "/api/v1/incidents":        http.StatusNotFound,
			a.HTTPURL() + "/api/v1/incidents": http.StatusOK,
		} {
			if code := get(url); code != want {
				t.Errorf("GET %s: %d, want %d", url, code, want)
			}
		}
		resp, err := http.Get(murl + "/nothing")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound || ct != "application/json" {
			t.Errorf("unknown path on the metrics listener: %d %s, want a JSON 404", resp.StatusCode, ct)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := http.Get(murl + "/metrics"); err == nil {
			t.Fatal("the metrics listener still serves after Run")
		}
	})
}

// stopRun cancels a running App and waits for Run to return nil.
func stopRun(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
}
