package redis_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// keyedBatches makes n batches of size realistic loadgen events (30 %
// duplicates), fingerprinted with the default fields.
func keyedBatches(b *testing.B, n, size int, seed uint64) [][]dedupe.Keyed {
	cfg := loadgen.DefaultConfig()
	cfg.Seed = seed
	return loadgen.Batches(loadgen.New(cfg), n, size)
}

// BenchmarkIngest: 512-event batches with 30 % duplicates (Lookup, fold,
// Apply) into Redis with appendonly yes, appendfsync everysec, one writer.
// serial runs storage.Ingest one batch after the other (BENCH_STATS=1 adds
// a breakdown); pipelined drives the store as the worker does
// (storetest.Pipelined: batch N+1 is read and folded while N is applied).
// BENCH_AS_VERSION=5.0.0 runs it on the commands of that version.
func BenchmarkIngest(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchIngest(b, false) })
	b.Run("pipelined", func(b *testing.B) { benchIngest(b, true) })
}

func benchIngest(b *testing.B, pipelined bool) {
	srv := redistest.StartStandalone(b, redistest.Options{AppendOnly: os.Getenv("BENCH_NO_AOF") == ""})
	cfg := redis.Config{URL: srv.URL()}
	if v := os.Getenv("BENCH_AS_VERSION"); v != "" {
		// e.g. 5.0.0: the commands of that version (ZSCORE per event).
		cfg = redis.AsIfVersion(cfg, v)
	}
	rs := open(b, cfg)
	ts := &timed{Store: rs, srv: srv}
	var s storage.Store = ts
	n := 400
	if v, err := strconv.Atoi(os.Getenv("BENCH_BATCHES")); err == nil && v > 0 {
		n = v
	}
	batches := keyedBatches(b, n, 512, 1)
	f := dedupe.NewFolder(0, storetest.NewIDs("bench"))
	p := &storetest.Pipelined{Store: rs, Folder: f}
	i := 0
	start, srvCPU, goCPU := time.Now(), srv.CPUTime(), processCPU()
	for b.Loop() {
		var err error
		if pipelined {
			err = p.Next(ctx, batches[i%n])
		} else {
			_, _, err = storage.Ingest(ctx, s, f, batches[i%n], time.Now)
		}
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := p.Drain(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(i*512)/time.Since(start).Seconds(), "events/s")
	// CPU per batch, less sensitive than wall time to other load on the
	// machine: Redis's and the client's (the latter includes the fold).
	b.ReportMetric(float64((srv.CPUTime()-srvCPU).Microseconds())/float64(i)/1000, "redis-cpu-ms/batch")
	b.ReportMetric(float64((processCPU()-goCPU).Microseconds())/float64(i)/1000, "go-cpu-ms/batch")
	if i > n {
		// Batch i replays batch i-n, every event of which is applied: a
		// stream of redeliveries, cheaper than the one measured (a 1500x
		// run reported 33.7k events/s at 10 ms of Redis CPU per batch).
		b.Logf("%d of %d batches replayed already-applied batches: the figures are not the stream's; set BENCH_BATCHES to at least the -benchtime count", i-n, i)
	}
	if os.Getenv("BENCH_STATS") != "" && !pipelined {
		b.Logf("per batch: lookup %v (redis cpu %v), apply %v (redis cpu %v)", ts.lookup/time.Duration(i), ts.lookupCPU/time.Duration(i),
			ts.apply/time.Duration(i), ts.applyCPU/time.Duration(i))
		for _, l := range strings.Split(srv.Client(b).Info(ctx, "commandstats").Val(), "\n") {
			if strings.HasPrefix(l, "cmdstat_") {
				b.Log(l)
			}
		}
	}
}

// BenchmarkListNewest50 is a newest-50 page of a two-field filter over
// BENCH_INCIDENTS (default 1M) incidents, loaded through storage.Ingest.
// It reports the p50 and p99 of one List call.
func BenchmarkListNewest50(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_INCIDENTS")); err == nil && v > 0 {
		n = v
	}
	srv := redistest.StartStandalone(b, redistest.Options{})
	s := open(b, redis.Config{URL: srv.URL(), PoolSize: 8})
	f := dedupe.NewFolder(0, storetest.NewIDs("q"))
	cfg := loadgen.DefaultConfig()
	cfg.DuplicateRatio = 0
	g := loadgen.New(cfg)
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	batch := make([]dedupe.Keyed, 0, 2000)
	load := time.Now()
	for stored := int64(0); stored < int64(n); {
		batch = batch[:0]
		for range 2000 {
			ev := g.Next()
			batch = append(batch, dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)})
		}
		if _, _, err := storage.Ingest(ctx, s, f, batch, time.Now); err != nil {
			b.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		stored = st.Incidents
	}
	b.Logf("loaded %d incidents in %v", n, time.Since(load).Round(time.Second))
	filters := []storage.Filter{
		{Severities: []incident.Severity{incident.P1}, Sources: []string{"llm-gateway"}},
		{States: []incident.State{incident.Detected}, Types: []incident.Type{incident.Security}},
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		page, err := s.List(ctx, filters[i%len(filters)], storage.Page{Limit: 50})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		if len(page) != 50 {
			b.Fatalf("page of %d", len(page))
		}
	}
	for _, f := range filters {
		t0 := time.Now()
		c, err := s.Count(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("count %v/%v/%v/%v = %d in %v", f.States, f.Severities, f.Sources, f.Types, c, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// timed adds up the time spent in Lookup and Apply.
type timed struct {
	*redis.Store
	srv                 *redistest.Server
	lookup, apply       time.Duration
	lookupCPU, applyCPU time.Duration
}

func (t *timed) Lookup(ctx context.Context, fps, ids []string) (storage.Snapshot, error) {
	t0, c0 := time.Now(), t.srv.CPUTime()
	defer func() { t.lookup += time.Since(t0); t.lookupCPU += t.srv.CPUTime() - c0 }()
	return t.Store.Lookup(ctx, fps, ids)
}

func (t *timed) Apply(ctx context.Context, b storage.Batch) error {
	t0, c0 := time.Now(), t.srv.CPUTime()
	defer func() { t.apply += time.Since(t0); t.applyCPU += t.srv.CPUTime() - c0 }()
	return t.Store.Apply(ctx, b)
}

// processCPU is the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPrune: one step of the retention walk (storetest.BenchPrune),
// 1,000 expired incidents deleted, 100 per script, among 100,000 kept,
// with appendonly yes and appendfsync everysec. max-cmd-ms is the longest
// command of the steps in Redis's slow log: how long a step held Redis.
func BenchmarkPrune(b *testing.B) {
	srv := redistest.StartStandalone(b, redistest.Options{AppendOnly: true})
	c := srv.Client(b)
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		b.Fatal(err)
	}
	var longest time.Duration
	storetest.BenchPrune(b, open(b, redis.Config{URL: srv.URL()}), 100_000, func(step func()) {
		if err := c.SlowLogReset(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		step()
		logs, err := c.SlowLogGet(ctx, 128).Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range logs {
			if strings.EqualFold(fmt.Sprint(l.Args[0]), "slowlog") {
				continue
			}
			longest = max(longest, l.Duration)
		}
	})
	b.ReportMetric(float64(longest)/float64(time.Millisecond), "max-cmd-ms")
}
