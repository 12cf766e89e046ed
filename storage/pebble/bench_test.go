package pebble_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/pebble"
	"github.com/llm-im/incidentd/storage/storetest"
)

// Benchmarks run on a store preloaded with BENCH_INCIDENTS (default 1M)
// incidents from loadgen. The preload takes a while; set
// INCIDENTD_BENCH_DIR to a directory to keep it between runs (each
// benchmark works on a checkpoint of it, so the cached copy stays as it
// was loaded).

func benchIncidents() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_INCIDENTS")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

func newUUID() string { return uuid.Must(uuid.NewV7()).String() }

// preloadStart is where the preload's event times begin; the benchmark
// streams start after it.
var preloadStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchStore returns a store holding the preload, opened on a fresh
// checkpoint (or on the freshly loaded directory) with cfg's tuning.
func benchStore(b *testing.B, cfg pebble.Config) *pebble.Store {
	b.Helper()
	n := benchIncidents()
	cache := os.Getenv("INCIDENTD_BENCH_DIR")
	if cache == "" {
		cfg.Path = filepath.Join(b.TempDir(), "db")
		preload(b, cfg.Path, n)
		return openBench(b, cfg)
	}
	src := filepath.Join(cache, fmt.Sprintf("pebble-%d", n))
	if _, err := os.Stat(filepath.Join(src, "PRELOADED")); err != nil {
		_ = os.RemoveAll(src)
		preload(b, src, n)
		if err := os.WriteFile(filepath.Join(src, "PRELOADED"), nil, 0o640); err != nil {
			b.Fatal(err)
		}
	}
	pcfg := pebble.DefaultConfig()
	pcfg.Path = src
	s, err := pebble.New(pcfg, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "COMPACTED")); err != nil {
		// The bulk load leaves compaction debt that would otherwise be
		// paid inside the measured loop.
		if err := s.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "COMPACTED"), nil, 0o640); err != nil {
			b.Fatal(err)
		}
	}
	cfg.Path = filepath.Join(b.TempDir(), "db")
	if err := s.Checkpoint(cfg.Path); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return openBench(b, cfg)
}

func openBench(b *testing.B, cfg pebble.Config) *pebble.Store {
	// Tuning experiments: BENCH_MEMTABLE_MB, BENCH_CACHE_MB, BENCH_BLOOM.
	for env, field := range map[string]*int{"BENCH_MEMTABLE_MB": &cfg.MemtableSizeMB, "BENCH_CACHE_MB": &cfg.CacheSizeMB, "BENCH_BLOOM": &cfg.BloomBitsPerKey} {
		if v, err := strconv.Atoi(os.Getenv(env)); err == nil {
			*field = v
		}
	}
	s, err := pebble.New(cfg, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// preload ingests unique loadgen events, in big unsynced batches, until n
// incidents are stored. Generators are renewed every 100k events (they
// remember every event they made).
func preload(b *testing.B, dir string, n int) {
	b.Helper()
	cfg := pebble.DefaultConfig()
	cfg.Path, cfg.Sync = dir, false
	s, err := pebble.New(cfg, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	folder := dedupe.NewFolder(0, newUUID)
	start := time.Now()
	var g *loadgen.Generator
	batch := make([]dedupe.Keyed, 0, 4096)
	for made, stored := 0, int64(0); stored < int64(n); made += cap(batch) {
		if made%100_000 < cap(batch) {
			gc := loadgen.DefaultConfig()
			gc.Seed, gc.DuplicateRatio, gc.IDPrefix = uint64(1000+made), 0, "pre"
			gc.Start = preloadStart.Add(time.Duration(made) * time.Millisecond)
			g = loadgen.New(gc)
		}
		batch = batch[:0]
		for range min(cap(batch), n-int(stored)) {
			ev := g.Next()
			batch = append(batch, dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)})
		}
		if _, _, err := storage.Ingest(ctx, s, folder, batch, time.Now); err != nil {
			b.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		stored = st.Incidents
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("preloaded %d incidents in %v", n, time.Since(start).Round(time.Second))
}

// streamBatches makes batches of size events from loadgen's default stream
// (30 % duplicates: same-id repeats and new events of known identities).
func streamBatches(b *testing.B, batches, size int) [][]dedupe.Keyed {
	gc := loadgen.DefaultConfig()
	gc.IDPrefix = "bench"
	gc.Start = preloadStart.Add(time.Duration(benchIncidents()+1) * time.Millisecond)
	return loadgen.Batches(loadgen.New(gc), batches, size)
}

// repeatAfter is how much later than the preload's events mergeBatches
// repeats them: inside the quiet period, so they merge, and late enough to
// move every merged incident's last_seen, hence its four index keys, as a
// repeat alert does.
const repeatAfter = 10 * time.Minute

// mergeBatches makes batches of size events that repeat the preload's
// first identities, in its order, repeatAfter later, with new event ids:
// every event merges into an open incident the preload stored long before
// (a stream of repeat alerts; the records are cold in the LSM).
func mergeBatches(batches, size int) [][]dedupe.Keyed {
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		panic(err)
	}
	out := make([][]dedupe.Keyed, batches)
	var g *loadgen.Generator
	for made := 0; made < batches*size; made++ {
		if made%4096 == 0 && made%100_000 < 4096 { // where preload renews its generator
			gc := loadgen.DefaultConfig()
			gc.Seed, gc.DuplicateRatio, gc.IDPrefix = uint64(1000+made), 0, "merge"
			gc.Start = preloadStart.Add(time.Duration(made)*time.Millisecond + repeatAfter)
			g = loadgen.New(gc)
		}
		ev := g.Next()
		out[made/size] = append(out[made/size], dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)})
	}
	return out
}

// BenchmarkApply: 512-event batches (Lookup, fold, one Apply) onto the
// preloaded store. Batches beyond BENCH_BATCHES (default 400) wrap around
// and are all duplicates: run it with -benchtime=400x or less. The merges
// variant sends repeat alerts of stored incidents (mergeBatches) instead
// of loadgen's stream, which mostly opens incidents.
// BENCH_RECORD_CACHE_MB overrides state.pebble.record_cache_mb.
//
// serial runs storage.Ingest one batch after the other. pipelined drives
// the store as the worker does (storetest.Pipelined): batch N+1 is looked
// up and folded, on top of batch N's result, while batch N is applied. GC runs at GOGC=400 as in
// incidentd (app.TuneRuntime), unless GOGC is set.
func BenchmarkApply(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, tc := range []struct {
		name      string
		sync      bool
		pipelined bool
		merges    bool
	}{
		{"sync=true", true, false, false},
		{"sync=false", false, false, false},
		{"sync=true/pipelined", true, true, false},
		{"merges/sync=true/pipelined", true, true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := pebble.DefaultConfig()
			cfg.Sync = tc.sync
			if v, err := strconv.Atoi(os.Getenv("BENCH_RECORD_CACHE_MB")); err == nil {
				cfg.RecordCacheMB = v // for A/B runs; 0 disables it
			}
			s := benchStore(b, cfg)
			n := 400
			if v, err := strconv.Atoi(os.Getenv("BENCH_BATCHES")); err == nil && v > 0 {
				n = v
			}
			batches := streamBatches(b, n, 512)
			if tc.merges {
				if n*512 > benchIncidents() {
					b.Skipf("BENCH_BATCHES %d repeat more events than the %d incidents stored", n, benchIncidents())
				}
				batches = mergeBatches(n, 512)
			}
			folder := dedupe.NewFolder(0, newUUID)
			ctx := context.Background()
			p := &storetest.Pipelined{Store: s, Folder: folder}
			before, err := s.Stats(ctx)
			if err != nil {
				b.Fatal(err)
			}
			events := 0
			cpu0 := cpuTime()
			b.ResetTimer()
			start := time.Now() // b.Elapsed stops before the last pipelined Apply ends
			for i := 0; b.Loop(); i++ {
				var err error
				if tc.pipelined {
					err = p.Next(ctx, batches[i%n])
				} else {
					_, _, err = storage.Ingest(ctx, s, folder, batches[i%n], time.Now)
				}
				if err != nil {
					b.Fatal(err)
				}
				events += 512
			}
			if err := p.Drain(); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			if after, err := s.Stats(ctx); err != nil || tc.merges && after.Incidents != before.Incidents {
				b.Fatalf("repeat alerts opened incidents: %d stored before, %d after (%v)", before.Incidents, after.Incidents, err)
			}
			if tc.merges { // the repeat moved last_seen, hence the index keys
				first := batches[0][0]
				got, err := s.List(ctx, storage.Filter{Fingerprints: []string{first.Fingerprint}}, storage.Page{Limit: 1})
				if err != nil || len(got) != 1 || !got[0].LastSeen.Equal(first.Event.OccurredAt) ||
					!got[0].FirstSeen.Before(got[0].LastSeen) || got[0].OccurrenceCount != 2 {
					b.Fatalf("the first repeat's incident: %+v, %v; want last_seen %v after first_seen, 2 occurrences", got, err, first.Event.OccurredAt)
				}
			}
			b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			// The machine is shared: CPU time per event (all threads,
			// compactions included) is the steadier figure.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(events), "cpu-µs/event")
			if os.Getenv("BENCH_LSM") != "" {
				m, _ := s.Metrics()
				fmt.Fprintf(os.Stderr, "LSM after the run:\n%s\n", m)
			}
		})
	}
}

// BenchmarkListTwoFields: the newest 50 of a two-field filter at 1M; p50
// and p99 of one List call.
func BenchmarkListTwoFields(b *testing.B) {
	s := benchStore(b, pebble.DefaultConfig())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    storage.Filter
	}{
		{"severity=P1&source=llm-gateway", storage.Filter{Severities: []incident.Severity{incident.P1}, Sources: []string{"llm-gateway"}}},
		{"state=Detected&type=Security", storage.Filter{States: []incident.State{incident.Detected}, Types: []incident.Type{incident.Security}}},
		{"severity=P0|P1&source=guardrails&active", storage.Filter{Severities: []incident.Severity{incident.P0, incident.P1}, Sources: []string{"guardrails"}, Active: ptr(true)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				t0 := time.Now()
				page, err := s.List(ctx, tc.f, storage.Page{Limit: 50})
				lat = append(lat, time.Since(t0))
				if err != nil || len(page) != 50 {
					b.Fatalf("page of %d, %v", len(page), err)
				}
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkCountOneField: Count of one field (counters) and, for
// comparison, of two fields (an index intersection walk) at 1M.
func BenchmarkCountOneField(b *testing.B) {
	s := benchStore(b, pebble.DefaultConfig())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    storage.Filter
	}{
		{"severity=P1", storage.Filter{Severities: []incident.Severity{incident.P1}}},
		{"source=llm-gateway|guardrails", storage.Filter{Sources: []string{"llm-gateway", "guardrails"}}},
		{"active", storage.Filter{Active: ptr(true)}},
		{"two-fields:severity=P1&source=llm-gateway", storage.Filter{Severities: []incident.Severity{incident.P1}, Sources: []string{"llm-gateway"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				t0 := time.Now()
				n, err := s.Count(ctx, tc.f)
				lat = append(lat, time.Since(t0))
				if err != nil || n == 0 {
					b.Fatalf("count %d, %v", n, err)
				}
			}
			reportLatency(b, lat)
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e6, "p99-ms")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ptr[T any](v T) *T { return &v }

// BenchmarkPrune: one step of the retention walk (storetest.BenchPrune),
// 1,000 expired incidents deleted in one batch among 100,000 kept, with
// fsync on (the product default).
func BenchmarkPrune(b *testing.B) {
	cfg := pebble.DefaultConfig()
	cfg.Path = filepath.Join(b.TempDir(), "db")
	storetest.BenchPrune(b, openBench(b, cfg), 100_000, nil)
}
