package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestReadyzNotReadyOnReplica: a worker on a standalone redis:// URL whose
// server is demoted to a replica (what a Sentinel failover does to the old
// master) turns not-ready from its idle store probe, saying the store is a
// read-only replica, without waiting for a batch to fail with READONLY;
// it is ready again once the server is a master. One warning, not counted
// as an outage.
func TestReadyzNotReadyOnReplica(t *testing.T) {
	other := redistest.StartStandalone(t, redistest.Options{})
	srv := redistest.StartStandalone(t, redistest.Options{})
	cfg := testConfig(t, config.BackendRedis)
	cfg.State.RedisURL = srv.URL()
	w := startObserved(t, cfg)
	a, logs, base := w.a, w.logs, w.a.HTTPURL()
	ctx := context.Background()

	host, port, _ := strings.Cut(other.Addr, ":")
	if err := srv.Client(t).Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	var body metrics.ReadyResponse
	waitFor(t, "not ready naming the store", func() bool {
		return httpGet(t, base+"/readyz", &body) == http.StatusServiceUnavailable && body.Failing["store"] != ""
	})
	t.Logf("/readyz: %+v", body)
	want := app.ErrStoreReadOnly.Error() + ": redis ping: " + srv.Addr + " is a read-only replica of " + other.Addr
	if !strings.HasPrefix(body.Failing["store"], want) {
		t.Errorf("failing store %q, want it to start with %q", body.Failing["store"], want)
	}
	if n := logs.FilterMessageSnippet("store read-only").Len(); n != 1 {
		t.Errorf("%d 'store read-only' lines, want 1", n)
	}
	if got := testutil.ToFloat64(a.Metrics().StoreUnreachable); got != 0 {
		t.Errorf("incidentd_store_unreachable_total = %v: a replica answers", got)
	}

	if err := srv.Client(t).Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready again", func() bool { return httpGet(t, base+"/readyz", nil) == http.StatusOK })
	if n := logs.FilterMessageSnippet("store writable again").Len(); n != 1 {
		t.Errorf("%d 'store writable again' lines, want 1", n)
	}
	w.stop(t)
}
