package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

// Messages that reach max_deliver. JetStream stops delivering a message
// after consumer.max_deliver attempts and publishes a max-deliveries
// advisory on a plain NATS subject. A subscription to that subject misses
// every advisory published while no worker runs (a crash loop is the usual
// way a message gets there) or faster than the worker reads them, and the
// message would then be lost without a trace. So the advisories are kept in
// a stream of their own (config.ConsumerConfig.MaxDeliveriesStream), and read through a durable
// pull consumer that every worker shares (named like the incident
// consumer): each advisory waits for a worker, is handled by one, and is
// acked only once its message is dead-lettered, found applied, or gone.

const (
	// advisoryBatch is how many advisories one fetch takes.
	advisoryBatch = 256
	// advisoryAckWait is the advisory consumer's AckWait: a batch of
	// advisories is handled well within it.
	advisoryAckWait = 30 * time.Second
	// advisoryReads is how many stream messages are read at once.
	advisoryReads = 16
	// advisoryTimeout bounds the handling of one batch of advisories.
	advisoryTimeout = 20 * time.Second
)

// maxDeliveriesSubject is the advisory subject of consumer durable on
// stream ("*": every consumer of the stream).
func maxDeliveriesSubject(stream, durable string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + durable
}

// MaxDeliveriesStreamConfig is the advisory stream: the max-deliveries
// advisories of every consumer of the incident stream, file-stored, kept as
// long as the incident stream keeps their messages.
func MaxDeliveriesStreamConfig(cfg config.ConsumerConfig) jetstream.StreamConfig {
	return fileStream(cfg, cfg.MaxDeliveriesStream(),
		"max-deliveries advisories of "+cfg.Stream+"'s consumers, kept until incidentd dead-letters their messages",
		[]string{maxDeliveriesSubject(cfg.Stream, "*")})
}

// MaxDeliveriesConsumerConfig is the durable pull consumer the workers share
// on the advisory stream, filtered to the advisories of consumer.durable.
// It redelivers without limit: the worker gives an advisory up itself after
// maxDeadLetterAttempts.
func MaxDeliveriesConsumerConfig(cfg config.ConsumerConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "incidentd workers: dead-letter the messages of " + cfg.Durable + " that reached max_deliver",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       advisoryAckWait,
		MaxDeliver:    -1,
		MaxAckPending: 4 * advisoryBatch,
		FilterSubject: maxDeliveriesSubject(cfg.Stream, cfg.Durable),
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		Replicas:      cfg.Replicas,
	}
}

// advisory is the part of io.nats.jetstream.advisory.v1.max_deliver we use.
type advisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries reads the advisory stream in the background until the
// returned stop is called; stop waits for the batch in hand.
func (c *Consumer) watchMaxDeliveries(ctx context.Context) (func(), error) {
	stream, err := c.js.Stream(ctx, c.cfg.Consumer.Stream)
	if err != nil {
		return nil, fmt.Errorf("bind stream %s: %w", c.cfg.Consumer.Stream, err)
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		c.pumpMaxDeliveries(hctx, stream)
	}()
	return func() { cancel(); <-finished }, nil
}

// pumpMaxDeliveries fetches advisories and handles them, batch by batch.
// When the advisory consumer cannot be read (deleted, NATS away), it warns
// once, sets the stream and consumer up again (unless SkipSetup) and
// retries with backoff.
func (c *Consumer) pumpMaxDeliveries(ctx context.Context, stream jetstream.Stream) {
	cc := c.cfg.Consumer
	backoff, failing := cc.RetryInitial.Duration, false
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		err := c.bindMaxDeliveries(ctx, &cons)
		if err == nil {
			err = c.fetchMaxDeliveries(ctx, cons, stream)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if failing {
				c.log.Info("reading max-deliveries advisories again", zap.String("stream", cc.MaxDeliveriesStream()))
			}
			backoff, failing = cc.RetryInitial.Duration, false
			continue
		case !failing:
			c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
			c.log.Warn("cannot read max-deliveries advisories; retrying (messages that reach max_deliver meanwhile wait in the stream)",
				zap.String("stream", cc.MaxDeliveriesStream()), zap.Error(err))
			failing = true
		}
		cons = nil
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cc.RetryMax.Duration)
	}
}

// bindMaxDeliveries binds *cons to the advisory consumer when it is nil,
// setting the stream and consumer up again, rebindDelay after it finds them
// missing.
func (c *Consumer) bindMaxDeliveries(ctx context.Context, cons *jetstream.Consumer) error {
	if *cons != nil {
		return nil
	}
	cc := c.cfg.Consumer
	got, err := c.js.Consumer(ctx, cc.MaxDeliveriesStream(), cc.Durable)
	if (errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)) && !c.cfg.SkipSetup {
		select { // a deleted stream's files may not be moved aside yet: see rebindDelay
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rebindDelay):
		}
		var acts []string
		if acts, err = setupMaxDeliveries(ctx, c.js, cc); err == nil {
			if slices.ContainsFunc(acts, created) { // another worker may have set them up first
				c.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedMaxDeliveries).Inc()
			}
			c.log.Warn("max-deliveries advisory stream or consumer was missing", zap.Strings("actions", acts))
			got, err = c.js.Consumer(ctx, cc.MaxDeliveriesStream(), cc.Durable)
		}
	}
	if err != nil {
		return fmt.Errorf("bind max-deliveries consumer: %w", err)
	}
	*cons = got
	return nil
}

// setupMaxDeliveries creates or updates the advisory stream and consumer.
func setupMaxDeliveries(ctx context.Context, js jetstream.JetStream, cfg config.ConsumerConfig) ([]string, error) {
	s, err := setupStream(ctx, js, MaxDeliveriesStreamConfig(cfg), "consumer.stream")
	if err != nil {
		return nil, err
	}
	k, err := setupConsumer(ctx, js, cfg.MaxDeliveriesStream(), MaxDeliveriesConsumerConfig(cfg))
	if err != nil {
		return nil, err
	}
	return []string{s, k}, nil
}

// fetchMaxDeliveries takes up to advisoryBatch advisories, waiting a few
// seconds at most, and handles them.
func (c *Consumer) fetchMaxDeliveries(ctx context.Context, cons jetstream.Consumer, stream jetstream.Stream) error {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := cons.Fetch(advisoryBatch, jetstream.FetchContext(fctx))
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		hctx, done := context.WithTimeout(context.WithoutCancel(ctx), advisoryTimeout)
		c.deadLetterMaxDelivered(hctx, stream, msgs)
		done()
	}
	if err := b.Error(); err != nil && len(msgs) == 0 && fctx.Err() == nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return nil
}

// maxDelivered is one advisory in hand and what became of its message.
type maxDelivered struct {
	msg     jetstream.Msg
	a       advisory
	raw     *jetstream.RawStreamMsg // nil: the message is gone
	meta    incident.Meta
	eventID string
	de      *incident.DecodeError // the dead letter's reason and message
	future  jetstream.PubAckFuture
	err     error
}

// deadLetterMaxDelivered handles a batch of advisories: it reads their
// messages, looks their event ids up in the store at once, publishes the
// dead letters of those not applied, and acks each advisory whose message
// is dead-lettered, applied or gone; a failed one is retried later.
func (c *Consumer) deadLetterMaxDelivered(ctx context.Context, stream jetstream.Stream, msgs []jetstream.Msg) {
	items := make([]*maxDelivered, 0, len(msgs))
	for _, m := range msgs {
		it := &maxDelivered{msg: m}
		if err := json.Unmarshal(m.Data(), &it.a); err != nil || it.a.StreamSeq == 0 {
			c.log.Warn("unreadable max-deliveries advisory; dropped", zap.ByteString("data", m.Data()))
			_ = m.Term()
			continue
		}
		items = append(items, it)
	}
	c.readMaxDelivered(ctx, stream, items)
	applied := c.appliedMaxDelivered(ctx, items)
	var sent []*maxDelivered
	for _, it := range items {
		if it.err != nil || it.raw == nil || applied[it.eventID] {
			continue
		}
		it.future, it.err = c.js.PublishMsgAsync(c.dlq.message(it.raw.Data, it.meta, it.raw.Subject, it.de))
		if it.err == nil {
			sent = append(sent, it)
		}
	}
	var stored []uint64
	for _, it := range sent {
		select {
		case ack := <-it.future.Ok():
			if !ack.Duplicate {
				c.m.EventsDeadLettered.WithLabelValues(string(it.de.Reason)).Inc()
				stored = append(stored, it.a.StreamSeq)
			}
		case it.err = <-it.future.Err():
		case <-ctx.Done():
			it.err = fmt.Errorf("dead-letter publish: %w", ctx.Err())
		}
	}
	if len(stored) > 0 {
		c.log.Warn("messages dead-lettered after max deliveries", zap.Int("messages", len(stored)),
			zap.Uint64s("stream_seqs", stored[:min(len(stored), 20)]))
	}
	c.settleMaxDelivered(items, applied)
}

// readMaxDelivered reads the advisories' messages, advisoryReads at a time,
// and decodes them.
func (c *Consumer) readMaxDelivered(ctx context.Context, stream jetstream.Stream, items []*maxDelivered) {
	sem := make(chan struct{}, advisoryReads)
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			raw, err := stream.GetMsg(ctx, it.a.StreamSeq)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				return // expired or removed meanwhile
			case err != nil:
				it.err = fmt.Errorf("get message: %w", err)
				return
			}
			it.raw = raw
			c.decodeMaxDelivered(it)
		}()
	}
	wg.Wait()
}

// decodeMaxDelivered sets the dead letter's reason: its decode failure when
// it has one (its dead letter could not be published before), else
// max_deliver; and the event id of a message that decodes.
func (c *Consumer) decodeMaxDelivered(it *maxDelivered) {
	it.meta = messageMeta(it.raw.Header, c.cfg.Consumer.Stream, it.raw.Sequence, it.raw.Time)
	it.de = &incident.DecodeError{Reason: incident.ReasonMaxDeliver,
		Msg: fmt.Sprintf("delivered %d times without a commit (consumer.max_deliver)", it.a.Deliveries)}
	ev, err := c.dec.Decode(it.raw.Data, it.meta)
	switch {
	case err == nil:
		it.eventID = ev.ID
	default:
		var de *incident.DecodeError
		if errors.As(err, &de) {
			it.de = de
		}
	}
}

// appliedMaxDelivered returns which of the items' event ids the store has
// applied (an ack lost after a commit): those are not dead-lettered. When
// the store cannot say, every message is dead-lettered: a dead letter of an
// applied event is harmless, a lost event is not.
func (c *Consumer) appliedMaxDelivered(ctx context.Context, items []*maxDelivered) map[string]bool {
	var ids []string
	for _, it := range items {
		if it.eventID != "" {
			ids = append(ids, it.eventID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	snap, err := c.store.Lookup(ctx, nil, ids)
	if err != nil {
		c.log.Warn("store lookup for messages that reached max deliveries failed; dead-lettering them all", zap.Error(err))
		return nil
	}
	return snap.Applied
}

// settleMaxDelivered acks each advisory that is done and schedules the
// others again, giving one up after maxDeadLetterAttempts deliveries.
func (c *Consumer) settleMaxDelivered(items []*maxDelivered, applied map[string]bool) {
	var skipped []uint64
	for _, it := range items {
		if it.err == nil {
			if it.raw != nil && applied[it.eventID] {
				skipped = append(skipped, it.a.StreamSeq)
			}
			_ = it.msg.Ack()
			continue
		}
		c.retryMaxDelivered(it)
	}
	if len(skipped) > 0 {
		c.log.Info("messages reached max deliveries but their events are applied; not dead-lettered",
			zap.Int("messages", len(skipped)), zap.Uint64s("stream_seqs", skipped[:min(len(skipped), 20)]))
	}
}

// retryMaxDelivered redelivers a failed advisory after a backoff (1 s,
// doubling), or gives its message up after maxDeadLetterAttempts: counted,
// logged with where the message still is, and the advisory terminated.
func (c *Consumer) retryMaxDelivered(it *maxDelivered) {
	reason := incident.ReasonMaxDeliver
	if it.de != nil {
		reason = it.de.Reason
	}
	c.deadLetterFailed(reason, it.err)
	attempt := 1
	if md, err := it.msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	if attempt >= maxDeadLetterAttempts {
		c.m.DeadLettersAbandoned.WithLabelValues(string(reason)).Inc()
		c.log.Error("message given up without a dead letter: it stays in the stream until consumer.max_age",
			zap.String("stream", c.cfg.Consumer.Stream), zap.Uint64("stream_seq", it.a.StreamSeq),
			zap.String("reason", string(reason)), zap.Int("attempts", attempt), zap.Error(it.err))
		_ = it.msg.TermWithReason("dead letter failed")
		return
	}
	backoff := time.Second << (attempt - 1)
	c.log.Warn("dead-letter after max deliveries failed; retrying", zap.Uint64("stream_seq", it.a.StreamSeq),
		zap.Duration("backoff", backoff), zap.Error(it.err))
	_ = it.msg.NakWithDelay(backoff)
}
