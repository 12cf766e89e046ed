package app_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/config"
)

// TestPprof: metrics.pprof serves the runtime's profiles beside the
// metrics endpoint (on http.listen, or on metrics.listen and then only
// there), read-only and without the command line; off, nothing answers
// under /debug/pprof/.
func TestPprof(t *testing.T) {
	get := func(t *testing.T, method, url string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	t.Run("on http.listen", func(t *testing.T) {
		cfg := testConfig(t, config.BackendMemory)
		cfg.Metrics.Pprof = true
		a := startWorker(t, cfg)
		base := a.HTTPURL() + config.PprofPath
		code, body := get(t, http.MethodGet, base)
		if code != http.StatusOK || !bytes.Contains(body, []byte("goroutine")) {
			t.Fatalf("GET %s: %d %.200s", base, code, body)
		}
		code, body = get(t, http.MethodGet, base+"goroutine?debug=1")
		if code != http.StatusOK || !bytes.Contains(body, []byte("app.(*App).Run")) {
			t.Errorf("goroutine profile: %d, without the worker's Run: %.300s", code, body)
		}
		code, body = get(t, http.MethodGet, base+"profile?seconds=1")
		if code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			t.Errorf("CPU profile: %d, %d bytes, not gzip (a pprof protobuf): %.100q", code, len(body), body)
		}
		code, body = get(t, http.MethodGet, base+"heap")
		if code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			t.Errorf("heap profile: %d, %d bytes", code, len(body))
		}
		if code, _ := get(t, http.MethodGet, base+"cmdline"); code != http.StatusNotFound {
			t.Errorf("cmdline: %d, want 404", code)
		}
		if code, _ := get(t, http.MethodPost, base+"symbol"); code != http.StatusMethodNotAllowed {
			t.Errorf("POST symbol: %d, want 405", code)
		}
		if code, _ := get(t, http.MethodGet, a.HTTPURL()+"/metrics"); code != http.StatusOK {
			t.Errorf("/metrics: %d beside the profiles", code)
		}
	})
	t.Run("on metrics.listen only", func(t *testing.T) {
		cfg := testConfig(t, config.BackendMemory)
		cfg.Metrics.Pprof = true
		cfg.Metrics.Listen = "127.0.0.1:0"
		a := startWorker(t, cfg)
		if code, body := get(t, http.MethodGet, "http://"+a.MetricsAddr()+config.PprofPath+"goroutine?debug=1"); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
			t.Errorf("profiles on the metrics listener: %d %.200s", code, body)
		}
		if code, _ := get(t, http.MethodGet, a.HTTPURL()+config.PprofPath); code != http.StatusNotFound {
			t.Errorf("profiles on http.listen: %d, want 404 with metrics.listen set", code)
		}
	})
	t.Run("off", func(t *testing.T) {
		a := startWorker(t, testConfig(t, config.BackendMemory))
		for _, p := range []string{"", "heap", "profile?seconds=1", "goroutine"} {
			if code, _ := get(t, http.MethodGet, a.HTTPURL()+config.PprofPath+p); code != http.StatusNotFound {
				t.Errorf("GET %s%s with metrics.pprof off: %d, want 404", config.PprofPath, p, code)
			}
		}
	})
}
