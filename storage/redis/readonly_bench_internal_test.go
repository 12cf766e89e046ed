package redis

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// BenchmarkReadOnlyQueries times, over BENCH_INCIDENTS (default 200k)
// incidents loaded through storage.Ingest, the queries that store an
// intersection in a scratch key on the normal path, against the same
// queries in read-only mode (the intersection built in the script's
// memory), interleaved, and logs the median of each. The answers must be
// the same.
func BenchmarkReadOnlyQueries(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_INCIDENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	srv := redistest.StartStandalone(b, redistest.Options{})
	s, err := New(Config{URL: srv.URL(), PoolSize: 8}, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	f := dedupe.NewFolder(0, storetest.NewIDs("q"))
	cfg := loadgen.DefaultConfig()
	cfg.DuplicateRatio, cfg.ResolveRatio = 0, 0.3
	g := loadgen.New(cfg)
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	batch := make([]dedupe.Keyed, 0, 2000)
	var stored int64
	for stored < int64(n) {
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
	// The median last_seen: incidents are generated 1 ms apart.
	mid := cfg.Start.Add(time.Duration(stored/2) * cfg.Step)
	queries := []struct {
		name  string
		count bool
		f     storage.Filter
	}{
		{"count severity=P1,source=llm-gateway,since=median", true, storage.Filter{Severities: []incident.Severity{incident.P1}, Sources: []string{"llm-gateway"}, Since: mid}},
		{"count severity=P0|P1,state=Detected", true, storage.Filter{Severities: []incident.Severity{incident.P0, incident.P1}, States: []incident.State{incident.Detected}}},
		{"count state=Resolved,until=median", true, storage.Filter{States: []incident.State{incident.Resolved}, Until: mid}},
		{"list 50 severity=P0,type=Security,source=llm-gateway (budget 1)", false, storage.Filter{Severities: []incident.Severity{incident.P0}, Types: []incident.Type{incident.Security}, Sources: []string{"llm-gateway"}}},
		{"list 50 state=Detected,severity=P2 (budget 1)", false, storage.Filter{States: []incident.State{incident.Detected}, Severities: []incident.Severity{incident.P2}}},
	}
	run := func(q int, ro bool) (string, time.Duration) {
		s.readOnly.until.Store(0)
		if ro {
			forceReadOnly(s)
		}
		s.budget = queryBudget
		t0 := time.Now()
		var out string
		if queries[q].count {
			c, err := s.Count(ctx, queries[q].f)
			if err != nil {
				b.Fatal(err)
			}
			out = strconv.FormatInt(c, 10)
		} else {
			s.budget = 1
			page, err := s.List(ctx, queries[q].f, storage.Page{Limit: 50})
			if err != nil {
				b.Fatal(err)
			}
			for _, in := range page {
				out += in.ID + " "
			}
		}
		return out, time.Since(t0)
	}
	times := make([][2][]time.Duration, len(queries))
	for b.Loop() {
		for q := range queries {
			a, ta := run(q, false)
			r, tr := run(q, true)
			if a != r {
				b.Fatalf("%s: read-only answered %q, normal %q", queries[q].name, r, a)
			}
			times[q][0] = append(times[q][0], ta)
			times[q][1] = append(times[q][1], tr)
		}
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	for q := range queries {
		a, _ := run(q, false)
		if len(a) > 20 {
			a = a[:20] + "..."
		}
		b.Logf("%d incidents, %s (%s): normal %v, read-only %v", stored, queries[q].name, a,
			median(times[q][0]).Round(10*time.Microsecond), median(times[q][1]).Round(10*time.Microsecond))
	}
}
