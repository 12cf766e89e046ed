package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/metrics"
)

// source pumps one Messages() iterator into a channel the loop can select on.
type source struct {
	it   jetstream.MessagesContext
	msgs chan jetstream.Msg
	quit chan struct{}
}

// Pull requests expire after pullExpiry and ask JetStream for an idle
// heartbeat every pullHeartbeat. When neither messages nor heartbeats
// arrive for two heartbeats, the iterator decides its requests are gone and
// issues new ones (kind missed_heartbeat in incidentd_nats_errors_total).
// nats.go's defaults (30 s and 15 s) made that a 30 s stall: in about 1 of
// 50 benchmark drains on a loaded 2-core machine the server stopped
// delivering while the client still counted requested messages, and only
// the missed heartbeats ended it.
const (
	pullExpiry    = 15 * time.Second
	pullHeartbeat = 5 * time.Second
)

// rebindDelay is how long the worker waits before it sets up a consumer (and
// stream) that disappeared, or a dead-letter stream that did. nats-server
// deletes a stream in this order: out of the account's streams (a lookup
// says it does not exist), its consumers stopped (the worker hears its
// consumer is gone), and only then its files moved aside; a stream created
// in between has its new files moved away with the old ones, and every
// later publish to it fails. The files are moved within the delete
// request, so a few milliseconds usually suffice; 5 s leaves room for a
// machine that stalls, and is short beside a deleted stream's outage.
const rebindDelay = 5 * time.Second

func (c *Consumer) startSource(cons jetstream.Consumer) (*source, error) {
	it, err := cons.Messages(jetstream.PullMaxMessages(2*c.cfg.Consumer.BatchSize), jetstream.PullThresholdMessages(3*c.cfg.Consumer.BatchSize/2),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return nil, fmt.Errorf("pull messages: %w", err)
	}
	s := &source{it: it, msgs: make(chan jetstream.Msg, 128), quit: make(chan struct{})}
	go func() {
		defer close(s.msgs)
		failures := 0 // consecutive pull errors: the first is a warning, the rest debug
		for {
			m, err := it.Next()
			if err == nil && failures > 0 {
				c.log.Info("pull recovered", zap.Int("errors", failures))
				failures = 0
			}
			switch {
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
				c.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedConsumer).Inc()
				c.log.Error("the durable consumer is gone; setting it up again", zap.Error(err))
				c.bound.Store(false)
				it.Stop()
				return
			case err != nil: // missed heartbeats (NATS away, a lost pull request): the iterator recovers
				c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
				failures++
				state, gone := consumerState(cons)
				if gone {
					// A server restarted without its JetStream state, or the
					// stream deleted while NATS was away: no pull request can
					// ever be answered, so set everything up again.
					c.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedConsumer).Inc()
					c.log.Error("the durable consumer is gone (its stream, or the server's JetStream state, was lost); setting it up again",
						append(state, zap.Error(err))...)
					c.bound.Store(false)
					it.Stop()
					return
				}
				if failures == 1 {
					// Delivered beyond what the client received: lost on the
					// way or in the client; equal, with no waiting pull: the
					// request was lost.
					c.log.Warn("pull error; the iterator issues a new pull request", append(state,
						zap.Uint64("client_received_stream_seq", c.lastReceived.Load()), zap.Error(err))...)
				} else {
					c.log.Debug("pull error; the iterator issues a new pull request", zap.Error(err))
				}
				select {
				case <-time.After(c.cfg.Consumer.RetryInitial.Duration):
				case <-s.quit:
					return
				}
				continue
			}
			select {
			case s.msgs <- m:
			case <-s.quit:
				return
			}
		}
	}()
	return s, nil
}

// consumerState describes the durable consumer as the server sees it, for
// the warning of a pull that went silent: whether the server still held
// pull requests (waiting) and what it had delivered and not seen acked.
// gone reports that JetStream answered that the consumer or its stream does
// not exist.
func consumerState(cons jetstream.Consumer) (state []zap.Field, gone bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		gone = errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
		return []zap.Field{zap.NamedError("consumer_info_error", err)}, gone
	}
	return []zap.Field{zap.Int("server_waiting_pulls", info.NumWaiting), zap.Uint64("server_pending", info.NumPending),
		zap.Int("server_ack_pending", info.NumAckPending), zap.Uint64("server_delivered_stream_seq", info.Delivered.Stream),
		zap.Uint64("server_ack_floor_stream_seq", info.AckFloor.Stream)}, false
}

// restartSource starts pulling again, first binding the consumer anew (and
// setting it up, unless SkipSetup) when it was lost. It retries with backoff
// until ctx ends, when it returns a nil source.
func (c *Consumer) restartSource(ctx context.Context, cons jetstream.Consumer) (*source, jetstream.Consumer, error) {
	backoff := c.cfg.Consumer.RetryInitial.Duration
	if !c.bound.Load() {
		// The consumer is gone, often because its stream is being deleted:
		// see rebindDelay (seen in TestStreamRecreated: every publish after
		// a stream created at once failed with a "critical write error").
		select {
		case <-ctx.Done():
			return nil, cons, nil
		case <-time.After(rebindDelay):
		}
	}
	for {
		var err error
		if !c.bound.Load() {
			cons, err = c.bind(ctx)
		}
		if err == nil {
			var src *source
			if src, err = c.startSource(cons); err == nil {
				c.bound.Store(true)
				return src, cons, nil
			}
		}
		c.log.Warn("restart pull", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return nil, cons, nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.cfg.Consumer.RetryMax.Duration)
	}
}

// drainWait bounds how long the shutdown waits for the client buffer.
const drainWait = 2 * time.Second

// stopPulling ends the pull subscription, taking what the client already
// buffered into cur. Without a connection (or when that takes longer than
// drainWait) the buffer is dropped instead: those messages were never acked
// and JetStream redelivers them.
func (c *Consumer) stopPulling(src *source, cur *batch) {
	if !c.nc.IsConnected() {
		src.it.Stop()
	} else {
		src.it.Drain()
	}
	timeout := time.After(drainWait)
	for {
		select {
		case m, ok := <-src.msgs:
			if !ok {
				return
			}
			c.receive(cur, m)
		case <-timeout:
			src.it.Stop()
			close(src.quit)
			timeout = nil
		}
	}
}
