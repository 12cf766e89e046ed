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
	const n = 100_000
	g := loadgen.New(loadgen.DefaultConfig())
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = loadgen.Marshal(g.Next())
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			for range b.N {
				drainOnce(b, st.open, msgs)
			}
		})
	}
}

func drainOnce(b *testing.B, open func(t testing.TB, dir string) storage.Store, msgs [][]byte) {
	b.StopTimer()
	cfg := testConfig()
	cfg.Consumer.BatchSize = 512
	cfg.Consumer.MaxAckPending = 8192
	cfg.Consumer.AckWait.Duration = 30 * time.Second
	cfg.InProgressEvery = 0
	var e *env
	if url := os.Getenv("BENCH_NATS_URL"); url != "" {
		e = externalEnv(b, url, cfg)
	} else {
		e = newEnv(b)
	}
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
