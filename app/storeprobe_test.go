package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// observed is a running worker whose log lines are kept.
type observed struct {
	a      *app.App
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error
}

// startObserved runs a worker on cfg, logging to the test and to logs, and
// waits until it is ready.
func startObserved(t *testing.T, cfg config.Config) *observed {
	t.Helper()
	obs, logs := observer.New(zapcore.InfoLevel)
	log := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, obs) })))
	a, err := app.New(cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &observed{a: a, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- a.Run(ctx) }()
	waitFor(t, "ready", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })
	return w
}

// stop shuts the worker down and expects a clean stop.
func (w *observed) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
}

// TestReadyzFollowsTheStore: an idle worker (nothing to commit) on Redis
// turns not-ready, naming the store, when its redis-server is killed, logs
// and counts that once however many probes fail, and is ready again once
// the server is back on its port.
func TestReadyzFollowsTheStore(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	cfg := testConfig(t, config.BackendRedis)
	cfg.State.RedisURL = srv.URL()
	w := startObserved(t, cfg)
	a, logs, base := w.a, w.logs, w.a.HTTPURL()

	srv.Kill()
	var body metrics.ReadyResponse
	waitFor(t, "not ready naming the store", func() bool {
		return httpGet(t, base+"/readyz", &body) == http.StatusServiceUnavailable && body.Failing["store"] != ""
	})
	t.Logf("/readyz: %+v", body)
	if !strings.HasPrefix(body.Failing["store"], app.ErrStoreUnreachable.Error()+": redis ping: ") {
		t.Errorf("failing store %q, want %q and the ping's error", body.Failing["store"], app.ErrStoreUnreachable)
	}
	// Many more probes (one each 100 ms), all failing: one line, one count.
	time.Sleep(10 * cfg.Consumer.LagPollInterval.Duration)
	if code := httpGet(t, base+"/readyz", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d with the store still down", code)
	}
	if n := logs.FilterMessageSnippet("store not answering").Len(); n != 1 {
		t.Errorf("%d 'store not answering' lines, want 1", n)
	}
	if l := logs.FilterMessageSnippet("store not answering").All(); len(l) > 0 && l[0].Level != zapcore.WarnLevel {
		t.Errorf("'store not answering' at %s, want warn", l[0].Level)
	}
	if got := testutil.ToFloat64(a.Metrics().StoreUnreachable); got != 1 {
		t.Errorf("incidentd_store_unreachable_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(a.Metrics().BatchesFailed); got != 0 {
		t.Errorf("incidentd_batches_failed_total = %v: the worker was to be idle", got)
	}

	srv.Restart(t)
	waitFor(t, "ready again", func() bool { return httpGet(t, base+"/readyz", nil) == http.StatusOK })
	if n := logs.FilterMessageSnippet("store answering again").Len(); n != 1 {
		t.Errorf("%d 'store answering again' lines, want 1", n)
	}
	w.stop(t)
	// The store closed by the shutdown is no outage.
	if got := testutil.ToFloat64(a.Metrics().StoreUnreachable); got != 1 {
		t.Errorf("incidentd_store_unreachable_total = %v after the shutdown, want 1", got)
	}
}
