package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/metrics"
)

// source pumps the durable consumer's messages into a channel the loop can
// select on. It pulls with one Fetch at a time, each asking for two batches
// (2 × batch_size) for at most fetchExpiry: every request has an inbox and
// a buffer of its own sized for what it asked, and the next is sent only
// once every message of the one before was handed on, so the client never
// holds more than it asked for and never drops a message. A Messages()
// iterator did: its buffer is the size of one request, and after a missed
// heartbeat or a reconnect it issued a new request while the server still
// served the old one (after a NATS restart, one sent while disconnected
// too), so the server delivered more than the buffer held; the client
// dropped the rest as a slow consumer, and JetStream redelivered them only
// after ack_wait, behind later messages (a resolve then found no trigger).
type source struct {
	msgs chan jetstream.Msg
	// draining is closed by drain: no new request; the one in flight is
	// taken to its end, then msgs closes.
	draining  chan struct{}
	drainOnce sync.Once
	// quit is closed by stop: the request in flight is abandoned (what it
	// still brings is never seen, and JetStream redelivers it after
	// ack_wait), then msgs closes.
	quit     chan struct{}
	stopOnce sync.Once
}

// drain ends pulling without losing a message: the request in flight
// (at most fetchExpiry long) delivers all it brings to msgs, then msgs
// closes.
func (s *source) drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// stop ends pulling at once.
func (s *source) stop() { s.stopOnce.Do(func() { close(s.quit) }) }

// fetchExpiry is how long one pull request waits at the server for
// messages. Short, so that a request lost with a server that restarted
// costs two seconds (the client gives it a second more than the server),
// and a drain (pausing for a failing store, a shutdown) waits at most that
// long for the request in flight to end.
const fetchExpiry = time.Second

// startSource sends the first pull request and starts the pump.
func (c *Consumer) startSource(cons jetstream.Consumer) (*source, error) {
	s := &source{msgs: make(chan jetstream.Msg, 128), draining: make(chan struct{}), quit: make(chan struct{})}
	first, err := c.fetch(cons)
	if err != nil {
		return nil, fmt.Errorf("pull messages: %w", err)
	}
	go c.pump(s, cons, first)
	return s, nil
}

// fetch sends one pull request for two batches. It ends when they have
// arrived, or with the server's status at fetchExpiry, or a second later
// when that status does not come (a request lost with its server): never
// while the server may still deliver to it.
func (c *Consumer) fetch(cons jetstream.Consumer) (jetstream.MessageBatch, error) {
	return cons.Fetch(2*c.cfg.Consumer.BatchSize, jetstream.FetchMaxWait(fetchExpiry))
}

// pump hands on every message of each request, then sends the next,
// until drained or stopped. A failed request is counted and logged (the
// first of a run as a warning), and the next waits retry_initial.
func (c *Consumer) pump(s *source, cons jetstream.Consumer, b jetstream.MessageBatch) {
	defer close(s.msgs)
	failures := 0 // consecutive failed requests: the first is a warning, the rest debug
	for {
		var err error
		if b != nil {
			n, ok := s.forward(b)
			if !ok {
				return
			}
			err = b.Error()
			if err == nil && n > 0 && failures > 0 {
				c.log.Info("pull recovered", zap.Int("errors", failures))
				failures = 0
			}
		}
		if err != nil && c.pullFailed(s, cons, err, &failures) {
			return
		}
		select {
		case <-s.draining:
			return
		case <-s.quit:
			return
		default:
		}
		if !c.waitConnected(s) {
			return
		}
		if b, err = c.fetch(cons); err != nil {
			b = nil
			if c.pullFailed(s, cons, err, &failures) {
				return
			}
		}
	}
}

// forward hands every message of b to s.msgs; it reports how many, and
// false when s was stopped meanwhile.
func (s *source) forward(b jetstream.MessageBatch) (int, bool) {
	n := 0
	for m := range b.Messages() {
		select {
		case s.msgs <- m:
			n++
		case <-s.quit:
			return n, false
		}
	}
	return n, true
}

// waitConnected waits, while the connection to NATS is down, for it to
// come back, so that no pull request is queued in the client's reconnect
// buffer for a server that may have restarted. It reports false when s was
// stopped or drained meanwhile, or the connection closed.
func (c *Consumer) waitConnected(s *source) bool {
	for !c.nc.IsConnected() {
		if c.nc.IsClosed() {
			return false
		}
		select {
		case <-s.quit:
			return false
		case <-s.draining:
			return false
		case <-time.After(c.cfg.Consumer.RetryInitial.Duration):
		}
	}
	return true
}

// pullFailed handles a failed pull request: a consumer that is gone ends
// the source (the loop sets it up again); anything else is counted, logged
// and waited out for retry_initial. It reports whether the pump must end.
func (c *Consumer) pullFailed(s *source, cons jetstream.Consumer, err error, failures *int) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		c.log.Error("the durable consumer is gone; setting it up again", zap.Error(err))
		c.bound.Store(false)
		return true
	}
	c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
	*failures++
	state, gone := consumerState(cons)
	if gone {
		// A server restarted without its JetStream state, or the stream
		// deleted while NATS was away: no pull request can ever be
		// answered, so set everything up again.
		c.log.Error("the durable consumer is gone (its stream, or the server's JetStream state, was lost); setting it up again",
			append(state, zap.Error(err))...)
		c.bound.Store(false)
		return true
	}
	if *failures == 1 {
		c.log.Warn("pull error; a new pull request follows", append(state,
			zap.Uint64("client_received_stream_seq", c.lastReceived.Load()), zap.Error(err))...)
	} else {
		c.log.Debug("pull error; a new pull request follows", zap.Error(err))
	}
	select {
	case <-time.After(c.cfg.Consumer.RetryInitial.Duration):
		return false
	case <-s.quit:
		return true
	}
}

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
			var created bool
			cons, created, err = c.bind(ctx)
			if created {
				// Counted where it was created, not where it was found
				// gone: every worker of the consumer finds that.
				c.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedConsumer).Inc()
			}
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

// drainWait bounds how long the shutdown waits for the pull request in
// flight (fetchExpiry) and the client buffer.
const drainWait = 2 * time.Second

// stopPulling ends pulling, taking what the request in flight still brings
// into cur. Without a connection (or when that takes longer than
// drainWait) the rest is dropped instead: those messages were never acked
// and JetStream redelivers them.
func (c *Consumer) stopPulling(src *source, cur *batch) {
	if !c.nc.IsConnected() {
		src.stop()
	} else {
		src.drain()
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
			src.stop()
			timeout = nil
		}
	}
}
