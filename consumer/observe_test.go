package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/metrics"
)

// latencySamples is the sample count of a worker's end-to-end latency
// histogram.
func latencySamples(w *worker) int {
	return int(metrics.Snapshot(w.m.EndToEndLatency).GetSampleCount())
}

// TestReplayObservesNoLatency deletes the durable consumer and sets it up
// again from outside (as another pod, or incidentctl setup, does) before
// the worker rebinds: the stream is delivered again from the start, every
// event an event-id duplicate. The end-to-end latency histogram records
// only events a commit applied, so the replay adds no sample (it once
// added one per duplicate, with the age of the stream: a replay of events
// applied long ago fired IncidentdEndToEndLatencyHigh). The worker found
// the consumer there, unchanged: it created nothing, and
// jetstream_recreated_total{object="consumer"} stays 0 (it once counted
// on every pod that saw the consumer gone).
func TestReplayObservesNoLatency(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	log := logicalLog(300, 0, true, 11)
	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	e.publish(payloads(log))
	e.settle(cfg, w)
	before := latencySamples(w)
	if n := applied(w); before != n {
		t.Fatalf("latency samples %d, want one per applied event (%d)", before, n)
	}
	dups := testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID))

	ctx := context.Background()
	if err := e.js.DeleteConsumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable); err != nil {
		t.Fatal(err)
	}
	rep, err := consumer.Setup(ctx, e.js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.ConsumerCreated {
		t.Fatalf("setup after the deletion did not create the consumer: %v", rep.Actions)
	}
	e.waitFor("the replay absorbed", 60*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)) >= dups+float64(before) &&
			w.c.Ready() == nil
	})
	e.settle(cfg, w)
	if got := latencySamples(w); got != before {
		t.Errorf("latency samples %d after the replay, want %d: duplicates were observed", got, before)
	}
	if got := testutil.ToFloat64(w.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedConsumer)); got != 0 {
		t.Errorf("jetstream_recreated_total{object=consumer} = %v on a worker that created nothing", got)
	}
}

// TestFlushDurationIncludesRetries fails the store for over a second under
// one batch: its incidentd_flush_duration_seconds sample spans the outage
// (every failed attempt and backoff), as its HELP says. It once recorded
// the last attempt only. The failed attempts count in
// incidentd_commit_errors_total too, by reason.
func TestFlushDurationIncludesRetries(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	store := stores[0].open(t, "")
	f := &flaky{Store: store}
	f.failing.Store(true)
	w := e.start(cfg, f)
	const outage = 1500 * time.Millisecond
	start := time.Now()
	e.publish(payloads(logicalLog(1, 0, false, 12)))
	e.waitFor("failed attempts", 10*time.Second, func() bool { return f.failures.Load() >= 3 })
	time.Sleep(outage - time.Since(start))
	f.failing.Store(false)
	e.settle(cfg, w)
	h := metrics.Snapshot(w.m.FlushDuration)
	if h.GetSampleCount() != 1 {
		t.Fatalf("%d flush samples, want 1 (one batch)", h.GetSampleCount())
	}
	if got := time.Duration(h.GetSampleSum() * float64(time.Second)); got < outage-100*time.Millisecond {
		t.Errorf("flush duration %v, want the outage (%v) included", got, outage)
	}
	failed := testutil.ToFloat64(w.m.BatchesFailed)
	if other := testutil.ToFloat64(w.m.CommitErrors.WithLabelValues(metrics.CommitErrorOther)); failed == 0 || other != failed {
		t.Errorf("commit_errors_total{reason=other} = %v, batches_failed_total = %v: want equal, above 0", other, failed)
	}
}
