package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// exhausted returns the stream sequences after floor up to last that the
// advisory stream names as having reached max_deliver: JetStream gave up
// on them, so the catch-up leaves them to the advisory handler, which
// dead-letters them. Committing them instead would defeat max_deliver, the
// operator's bound on a message that keeps failing (one that makes workers
// crash would make every start crash). An advisory JetStream has not
// published yet (up to ack_wait after the last delivery) cannot be known:
// such a message is caught up, and its advisory then finds it applied.
func (c *Consumer) exhausted(ctx context.Context, floor, last uint64) (map[uint64]bool, error) {
	cc := c.cfg.Consumer
	subject := maxDeliveriesSubject(cc.Stream, cc.Durable)
	s, err := c.js.Stream(ctx, cc.MaxDeliveriesStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // set up by the worker after this; nothing recorded yet
	}
	if err != nil {
		return nil, fmt.Errorf("advisory stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("advisory stream: %w", err)
	}
	st := info.State
	want := st.Subjects[subject]
	if want == 0 {
		return nil, nil
	}
	from := st.FirstSeq
	if want > maxCatchUp && st.LastSeq > maxCatchUp {
		// The advisories of the span are the latest ones.
		from, want = st.LastSeq-maxCatchUp+1, maxCatchUp
	}
	oc, err := c.js.OrderedConsumer(ctx, cc.MaxDeliveriesStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, fmt.Errorf("read advisories: %w", err)
	}
	out := map[uint64]bool{}
	for read := uint64(0); read < want; {
		b, err := oc.Fetch(advisoryBatch, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read advisories: %w", err)
		}
		got := 0
		for m := range b.Messages() {
			got++
			var a advisory
			if json.Unmarshal(m.Data(), &a) == nil && a.StreamSeq > floor && a.StreamSeq <= last {
				out[a.StreamSeq] = true
			}
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				return out, nil
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read advisories: %w", err)
		}
		if got == 0 {
			break // fewer than counted: some aged out meanwhile
		}
		read += uint64(got)
	}
	return out, nil
}
