package redis

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
)

// metrics are the store's collectors. The pool ones read the client's
// PoolStats at scrape time.
type metrics struct {
	conflicts prometheus.Counter
	refusals  *prometheus.CounterVec
	unsafe    prometheus.Gauge
}

func newMetrics(rdb goredis.UniversalClient, reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "incidentd_redis_apply_conflicts_total",
			Help: "Batch applies refused because another writer changed an incident or applied an event first.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentd_redis_query_write_refusals_total",
			Help: "List and Count scripts whose scratch keys Redis refused, by reason (readonly: a replica, noperm: an ACL user that may not write, oom: maxmemory reached with noeviction); each was answered again without them, as are the queries of the next minute.",
		}, []string{"reason"}),
		unsafe: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "incidentd_redis_eviction_policy_unsafe",
			Help: "1 when a Redis server of the deployment had a maxmemory-policy that evicts any key (allkeys-*) as the store opened, which silently loses incidents and index entries at maxmemory; 0 otherwise, or when CONFIG GET was refused.",
		}),
	}
	for _, r := range refusalReasons {
		m.refusals.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	stat := func(f func(*goredis.PoolStats) uint32) func() float64 {
		return func() float64 { return float64(f(rdb.PoolStats())) }
	}
	cs := []prometheus.Collector{
		m.conflicts,
		m.refusals,
		m.unsafe,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "incidentd_redis_pool_hits_total", Help: "Times a free connection was found in the pool.",
		}, stat(func(p *goredis.PoolStats) uint32 { return p.Hits })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "incidentd_redis_pool_misses_total", Help: "Times no free connection was found in the pool.",
		}, stat(func(p *goredis.PoolStats) uint32 { return p.Misses })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "incidentd_redis_pool_timeouts_total", Help: "Times waiting for a pool connection timed out.",
		}, stat(func(p *goredis.PoolStats) uint32 { return p.Timeouts })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "incidentd_redis_pool_stale_connections_total", Help: "Stale connections removed from the pool.",
		}, stat(func(p *goredis.PoolStats) uint32 { return p.StaleConns })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "incidentd_redis_pool_connections", Help: "Connections in the pool.",
		}, stat(func(p *goredis.PoolStats) uint32 { return p.TotalConns })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "incidentd_redis_pool_idle_connections", Help: "Idle connections in the pool.",
		}, stat(func(p *goredis.PoolStats) uint32 { return p.IdleConns })),
	}
	for _, level := range countedLevels {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "incidentd_redis_client_log_lines_total",
			Help:        "Lines the go-redis client logged (failed dials, Sentinel and Cluster changes), by the level they get; rate-limited and disabled ones included.",
			ConstLabels: prometheus.Labels{"level": level.String()},
		}, func() float64 { return float64(clientLogLines(level)) }))
	}
	cs = append(cs, clusterCollectors(rdb)...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return metrics{}, fmt.Errorf("redis metrics: %w", err)
		}
	}
	return m, nil
}
