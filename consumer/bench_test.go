package consumer_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
)

// BenchmarkDrain loads the stream with 100k loadgen events (30 %
// duplicates), then measures how fast one worker drains it with per-message
// acks. The NATS server runs in the same process unless BENCH_NATS_URL names
// an external one (its INCIDENTS streams are deleted first).
//
//	go test ./consumer -run '^$' -bench Drain -benchtime 1x
//	BENCH_NATS_URL=nats://127.0.0.1:4333 go test ./consumer -run '^$' -bench Drain -benchtime 1x
func BenchmarkDrain(b *testing.B) {
	msgs := benchMsgs()
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			for range b.N {
				drainOnce(b, st.open, msgs)
			}
		})
	}
}

// benchMsgs is the drain benchmark's load: 100k loadgen events, 30 %
// duplicates.
func benchMsgs() [][]byte {
	g := loadgen.New(loadgen.DefaultConfig())
	msgs := make([][]byte, 100_000)
	for i := range msgs {
		msgs[i] = loadgen.Marshal(g.Next())
	}
	return msgs
}

func drainOnce(b *testing.B, open func(t testing.TB, dir string) storage.Store, msgs [][]byte) {
	b.StopTimer()
	cfg, e := benchEnv(b)
	store := open(b, b.TempDir())
	if _, err := consumer.Setup(context.Background(), e.js, cfg.Consumer); err != nil {
		b.Fatal(err)
	}
	e.publish(msgs)
	b.StartTimer()
	cpu0 := cpuTime()
	start := time.Now()
	w := e.start(cfg, store)
	e.waitFor("drained", 5*time.Minute, func() bool { return e.drained(cfg) })
	took := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(cpu.Seconds()/took.Seconds(), "cores")
	b.ReportMetric(cpu.Seconds()*1e6/float64(len(msgs)), "cpu-µs/event")
	b.ReportMetric(float64(maxRSS())/(1<<20), "maxrss-MiB")
	batches := testutil.ToFloat64(w.m.BatchesCommitted)
	b.ReportMetric(float64(len(msgs))/took.Seconds(), "events/s")
	b.ReportMetric(batches/took.Seconds(), "batches/s")
	b.ReportMetric(float64(len(msgs))/batches, "events/batch")
	b.Logf("drained %d in %s, %v batches", len(msgs), took, batches)
	w.stop(b)
	store.Close()
}

// cpuTime is the process's user+system CPU time (the NATS server included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLatency offers 20k events/s for 5 s to one worker and reports
// the publish-to-commit latency (JetStream timestamp to durable commit)
// p50 and p99 from the worker's histogram.
//
//	BENCH_NATS_URL=nats://127.0.0.1:4333 go test ./consumer -run '^$' -bench Latency -benchtime 1x
func BenchmarkLatency(b *testing.B) {
	const rate, seconds = 20_000, 5
	g := loadgen.New(loadgen.DefaultConfig())
	msgs := make([][]byte, rate*seconds)
	for i := range msgs {
		msgs[i] = loadgen.Marshal(g.Next())
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			for range b.N {
				latencyOnce(b, st.open, msgs, rate)
			}
		})
	}
}

func latencyOnce(b *testing.B, open func(t testing.TB, dir string) storage.Store, msgs [][]byte, rate int) {
	cfg, e := benchEnv(b)
	w := e.start(cfg, open(b, b.TempDir()))
	const tick = 5 * time.Millisecond
	per := rate * int(tick) / int(time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	for i := 0; i < len(msgs); i += per {
		<-t.C
		for _, m := range msgs[i:min(i+per, len(msgs))] {
			if _, err := e.js.PublishAsync("incidents.events.bench", m); err != nil {
				b.Fatal(err)
			}
		}
	}
	offered := float64(len(msgs)) / time.Since(start).Seconds()
	e.settle(cfg, w)
	h := metrics.Snapshot(w.m.EndToEndLatency)
	b.ReportMetric(offered, "offered/s")
	b.ReportMetric(metrics.HistogramQuantile(0.5, h)*1000, "p50-ms")
	b.ReportMetric(metrics.HistogramQuantile(0.99, h)*1000, "p99-ms")
	f := metrics.Snapshot(w.m.FlushDuration)
	b.ReportMetric(metrics.HistogramQuantile(0.99, f)*1000, "flush-p99-ms")
}

// maxRSS is the process's peak resident set size in bytes.
func maxRSS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10
}

// benchEnv is the product's batching with benchmark timings, on the NATS
// server BENCH_NATS_URL names (a separate process) or an embedded one.
func benchEnv(b *testing.B) (consumer.Config, *env) {
	cfg := testConfig()
	cfg.Consumer.BatchSize = 512
	cfg.Consumer.MaxAckPending = 8192
	cfg.Consumer.AckWait.Duration = 30 * time.Second
	cfg.InProgressEvery = 0
	cfg.Serial = os.Getenv("BENCH_SERIAL") != ""
	if url := os.Getenv("BENCH_NATS_URL"); url != "" {
		return cfg, externalEnv(b, url, cfg)
	}
	return cfg, newEnv(b)
}
