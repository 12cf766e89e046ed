package ctl

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/llm-im/incidentd/loadgen"
)

// publishN publishes n generated events as fast as acks allow.
func (b *bench) publishN(ctx context.Context, p *publisher, n int) error {
	for range n {
		if err := b.publishOne(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) publishOne(ctx context.Context, p *publisher) error {
	ev := b.events.next()
	return p.publish(ctx, subjectFor(b.subj, ev.Source), ev.ID, loadgen.Marshal(ev))
}

// load publishes --events events before the worker starts.
func (b *bench) load(ctx context.Context) error {
	p, err := newPublisher(ctx, b.nc, b.f.maxPending, 0)
	if err != nil {
		return err
	}
	if b.startWorkerNow == nil { // an external worker drains while we load
		if err := b.startDrainClock(ctx); err != nil {
			return err
		}
	}
	prog := startProgress(b.o.Err, func(d time.Duration) string {
		s := p.stats()
		return fmt.Sprintf("load: %d/%d events acked, %s", s.Acked, b.f.events, rate(s.Acked, d))
	})
	start := time.Now()
	err = b.publishN(ctx, p, b.f.events)
	st := p.wait()
	prog.done()
	if err == nil {
		err = p.err(nil)
	}
	el := time.Since(start)
	l := &b.res.Load
	l.Events, l.DroppedDup, l.Stored = st.Acked, st.Duplicates, st.Acked-st.Duplicates
	l.Seconds, l.EventsPerSec = round2(el.Seconds()), math.Round(float64(st.Acked)/el.Seconds())
	return err
}

// lastSeq is the incident stream's last sequence.
func (b *bench) lastSeq(ctx context.Context) (uint64, error) {
	s, err := b.js.Stream(ctx, b.cfg.Consumer.Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", b.cfg.Consumer.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// waitAcked polls the consumer until every message up to seq is acked,
// sampling RSS; it returns when they are.
func (b *bench) waitAcked(ctx context.Context, seq uint64, what string) error {
	c, err := b.js.Consumer(ctx, b.cfg.Consumer.Stream, b.cfg.Consumer.Durable)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", b.cfg.Consumer.Durable, err)
	}
	var floor atomic.Uint64 // the progress line reads it from its own goroutine
	prog := startProgress(b.o.Err, func(d time.Duration) string {
		return fmt.Sprintf("%s: acked through stream sequence %d of %d", what, floor.Load(), seq)
	})
	defer prog.done()
	deadline := time.Now().Add(b.f.timeout)
	for {
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer info: %w", err)
		}
		floor.Store(info.AckFloor.Stream)
		if info.AckFloor.Stream >= seq && info.NumAckPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not drained after %s (ack floor %d of %d, %d pending acks)", what, b.f.timeout, info.AckFloor.Stream, seq, info.NumAckPending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startDrainClock starts the drain's time and its worker CPU together:
// right before the first publish with --worker-url (that worker consumes
// while the load is published), right before the in-process worker starts
// otherwise.
func (b *bench) startDrainClock(ctx context.Context) error {
	s, err := b.scr.scrape(ctx)
	if err != nil {
		return err
	}
	b.drainCPU0 = s.value(mCPU)
	b.t0 = time.Now()
	return nil
}

// drain starts the worker and measures until the stream is acked.
func (b *bench) drain(ctx context.Context, before sample) error {
	seq, err := b.lastSeq(ctx)
	if err != nil {
		return err
	}
	// The load's generator history is the publisher's, not the worker's:
	// free it before the worker's memory is watched.
	b.events.release(latencyChunk)
	runtime.GC()
	debug.FreeOSMemory()
	if b.startWorkerNow != nil {
		if err := b.startDrainClock(ctx); err != nil {
			return err
		}
		b.startWorkerNow()
	}
	b.watchRSS()
	if err := b.waitAcked(ctx, seq, "drain"); err != nil {
		return err
	}
	el := time.Since(b.t0)
	after, err := b.scr.scrape(ctx)
	if err != nil {
		return err
	}
	d := &b.res.Drain
	d.Messages = int64(after.value(mReceived) - before.value(mReceived))
	d.Seconds = round2(el.Seconds())
	d.EventsPerSec = math.Round(float64(b.res.Load.Stored) / el.Seconds())
	d.Batches = int64(after.value(mBatches) - before.value(mBatches))
	d.BatchesPerSec = math.Round(float64(d.Batches) / el.Seconds())
	if d.Batches > 0 {
		d.AvgBatch = math.Round(float64(b.res.Load.Stored) / float64(d.Batches))
	}
	d.CPUSeconds = round2(after.value(mCPU) - b.drainCPU0)
	if d.CPUSeconds > 0 {
		d.EventsPerCPUSec = math.Round(float64(b.res.Load.Stored) / d.CPUSeconds)
	}
	fl := histDelta(after.histogram(mFlush), before.histogram(mFlush))
	d.FlushP50MS, d.FlushP99MS = quantileMS(0.5, fl), quantileMS(0.99, fl)
	return nil
}

// latency publishes at --rate for --duration while the worker runs, then
// reads the end-to-end latency histogram's change.
func (b *bench) latency(ctx context.Context) error {
	if b.f.rate <= 0 || b.f.duration <= 0 {
		return nil
	}
	before, err := b.scr.scrape(ctx)
	if err != nil {
		return err
	}
	p, err := newPublisher(ctx, b.nc, b.f.maxPending, 0)
	if err != nil {
		return err
	}
	prog := startProgress(b.o.Err, func(d time.Duration) string {
		s := p.stats()
		return fmt.Sprintf("latency: %d events at %d/s offered, %s acked", s.Sent, b.f.rate, rate(s.Acked, d))
	})
	start := time.Now()
	err = b.paced(ctx, p, start)
	st := p.wait()
	el := time.Since(start)
	prog.done()
	if err == nil {
		err = p.err(nil)
	}
	if err != nil {
		return err
	}
	seq, err := b.lastSeq(ctx)
	if err != nil {
		return err
	}
	if err := b.waitAcked(ctx, seq, "latency"); err != nil {
		return err
	}
	after, err := b.scr.scrape(ctx)
	if err != nil {
		return err
	}
	l := &b.res.Latency
	l.OfferedPerSec, l.Seconds, l.Published = b.f.rate, round2(el.Seconds()), st.Sent
	b.latencyStored = st.Acked - st.Duplicates
	l.AchievedPerSec = math.Round(float64(st.Sent) / el.Seconds())
	h := histDelta(after.histogram(mLatency), before.histogram(mLatency))
	l.Samples = h.GetSampleCount()
	l.P50MS, l.P99MS = quantileMS(0.5, h), quantileMS(0.99, h)
	l.FlushP99MS = quantileMS(0.99, histDelta(after.histogram(mFlush), before.histogram(mFlush)))
	return nil
}

// paced publishes so that, at every 2ms tick, rate*elapsed events are out.
func (b *bench) paced(ctx context.Context, p *publisher, start time.Time) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	sent := 0
	total := int(float64(b.f.rate) * b.f.duration.Seconds())
	for sent < total {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		due := min(total, int(float64(b.f.rate)*time.Since(start).Seconds()))
		for ; sent < due; sent++ {
			if err := b.publishOne(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// latencyChunk bounds the latency phase's generator history (see
// eventSource).
const latencyChunk = 20_000

// watchRSS samples the worker's resident memory until cleanup: this
// process's VmRSS every 100ms in process (it includes the publisher, and the
// nats-server when embedded), the worker's process_resident_memory_bytes
// every second otherwise.
func (b *bench) watchRSS() {
	stop := make(chan struct{})
	done := make(chan struct{})
	every := 100 * time.Millisecond
	b.res.RSSSource = "max VmRSS of this process while the worker ran (includes the publisher"
	if b.target.url == "" {
		b.res.RSSSource += " and the embedded nats-server"
	}
	b.res.RSSSource += ")"
	if b.startWorkerNow == nil {
		every = time.Second
		b.res.RSSSource = "max of the worker's process_resident_memory_bytes, sampled every second"
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			b.sampleRSS()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.stopRSS = func() {
		close(stop)
		<-done
		b.sampleRSS()
	}
	b.stop = append(b.stop, func() {
		if b.stopRSS != nil {
			b.stopRSS()
			b.stopRSS = nil
		}
	})
}

func (b *bench) sampleRSS() {
	var v int64
	if b.startWorkerNow != nil {
		v = procStatusKB("/proc/self/status", "VmRSS:") << 10
	} else if s, err := b.scr.scrape(context.Background()); err == nil {
		v = int64(s.value(mRSS))
	}
	b.rssMu.Lock()
	b.res.RSSPeakBytes = max(b.res.RSSPeakBytes, v)
	b.rssMu.Unlock()
}

// check compares what the worker committed with what was published.
func (b *bench) check(ctx context.Context, before sample) error {
	if b.stopRSS != nil {
		b.stopRSS()
		b.stopRSS = nil
	}
	after, err := b.scr.scrape(ctx)
	if err != nil {
		return err
	}
	c := &b.res.Check
	delta := func(n string) int64 { return int64(after.value(n) - before.value(n)) }
	c.DistinctEventIDs = b.events.distinct()
	c.EventsApplied, c.EventsReceived = delta(mApplied), delta(mReceived)
	c.Invalid, c.DeadLettered, c.BatchesFailed = delta(mInvalid), delta(mDeadLettered), delta(mBatchFailed)
	if c.Incidents, err = b.count(ctx); err != nil {
		return fmt.Errorf("bench count: %w", err)
	}
	stored := b.res.Load.Stored + b.latencyStored
	if c.EventsApplied != c.DistinctEventIDs {
		c.Problems = append(c.Problems, fmt.Sprintf("%d events applied, %d distinct event ids published", c.EventsApplied, c.DistinctEventIDs))
	}
	if c.EventsReceived < stored {
		c.Problems = append(c.Problems, fmt.Sprintf("worker received %d messages, the stream held %d", c.EventsReceived, stored))
	}
	if c.Invalid+c.DeadLettered > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d invalid, %d dead-lettered (want 0)", c.Invalid, c.DeadLettered))
	}
	// The run's own incidents: a running worker's store may hold others
	// from before (into which this run's events may all merge), so it is
	// the count of incidents opened during the run that cannot exceed the
	// events.
	if opened := delta(mOpened); c.Incidents <= 0 || opened > c.DistinctEventIDs {
		c.Problems = append(c.Problems, fmt.Sprintf("%d incidents opened (%d in the store) for %d distinct events", opened, c.Incidents, c.DistinctEventIDs))
	}
	return nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
