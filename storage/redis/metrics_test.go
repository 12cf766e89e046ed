package redis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestMetrics: every series exists from New on (conflicts reading zero),
// a conflict counts once, names pass the Prometheus linter, and /metrics
// never shows the password.
func TestMetrics(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{RequirePass: "metrics-s3cret"})
	reg := prometheus.NewRegistry()
	s, err := redis.New(redis.Config{URL: srv.URL()}, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	names := []string{
		"incidentd_redis_apply_conflicts_total", "incidentd_redis_pool_hits_total", "incidentd_redis_pool_misses_total",
		"incidentd_redis_pool_timeouts_total", "incidentd_redis_pool_stale_connections_total",
		"incidentd_redis_pool_connections", "incidentd_redis_pool_idle_connections",
		"incidentd_redis_eviction_policy_unsafe",
	}
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != len(names) {
		t.Fatalf("gathered %d of %d series: %v", n, len(names), err)
	}
	// One series per reason: readonly, noperm, oom.
	if n, err := testutil.GatherAndCount(reg, "incidentd_redis_query_write_refusals_total"); err != nil || n != 3 {
		t.Fatalf("gathered %d refusal series, want 3: %v", n, err)
	}
	conflicts := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "incidentd_redis_apply_conflicts_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	if c := conflicts(); c != 0 {
		t.Fatalf("conflicts = %v at start", c)
	}
	a := storetest.SparseIncident("inc-m", "v1:m")
	storetest.Put(t, s, a)
	stale := storetest.Update(a, func(*incident.Incident) {})
	stale.Version = 5
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{stale}}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("apply = %v", err)
	}
	if c := conflicts(); c != 1 {
		t.Fatalf("conflicts = %v, want 1", c)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if strings.Contains(mf.String(), "metrics-s3cret") {
			t.Fatalf("password in %s", mf.GetName())
		}
	}
}
