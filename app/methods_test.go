package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// TestProbeMethods: /healthz, /readyz and /metrics (on the HTTP listener
// and on a metrics listener of its own) answer another method than GET or
// HEAD with 405 and Allow: GET, HEAD, as the query paths do.
func TestProbeMethods(t *testing.T) {
	for _, own := range []bool{false, true} {
		cfg := testConfig(t, config.BackendMemory)
		if own {
			cfg.Metrics.Listen = "127.0.0.1:0"
		}
		a, stop := runReady(t, cfg)
		base, murl := a.HTTPURL(), "http://"+a.MetricsAddr()
		for _, url := range []string{base + "/healthz", base + "/readyz", murl + "/metrics"} {
			checkMethods(t, url)
		}
		stop()
	}
}

// runReady runs an App on cfg until it is ready; stop ends it and fails
// the test if Run returned an error.
func runReady(t *testing.T, cfg config.Config) (*app.App, func()) {
	t.Helper()
	a, err := app.New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "ready", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })
	return a, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func checkMethods(t *testing.T, url string) {
	t.Helper()
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		req, _ := http.NewRequest(m, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want, allow := http.StatusMethodNotAllowed, "GET, HEAD"
		if m == http.MethodGet || m == http.MethodHead {
			want, allow = http.StatusOK, ""
		}
		if resp.StatusCode != want || resp.Header.Get("Allow") != allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", m, url, resp.StatusCode, resp.Header.Get("Allow"), want, allow)
		}
	}
}

// TestNonCanonicalPaths: on both listeners, a path with an empty, "." or
// ".." segment (an unset shell variable in a URL) answers the JSON 404
// no_such_endpoint, not a redirect to the cleaned path.
func TestNonCanonicalPaths(t *testing.T) {
	cfg := testConfig(t, config.BackendMemory)
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.HTTP.AllowWrites = true
	a, stop := runReady(t, cfg)
	defer stop()
	base, murl := a.HTTPURL(), "http://"+a.MetricsAddr()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct{ method, url string }{
		{http.MethodPost, base + "/api/v1/incidents//state"},
		{http.MethodGet, base + "/api/v1/incidents//"},
		{http.MethodGet, base + "/api/v1//incidents?limit=1"},
		{http.MethodGet, base + "//healthz"},
		{http.MethodGet, base + "/./readyz"},
		{http.MethodGet, murl + "//metrics"},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(`{"state":"Closed"}`))
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e api.ErrorResponse
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal(b, &e) != nil || e.Code != api.CodeNoSuchEndpoint {
			t.Errorf("%s %s: %d %s, want 404 code %s", tc.method, tc.url, resp.StatusCode, b, api.CodeNoSuchEndpoint)
		}
	}
}
