package ctl

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Riding through a NATS server that goes away mid-run: a publish, or its
// ack, lost with the connection may or may not have reached the stream, so
// the message is sent again with its Nats-Msg-Id once the connection is
// back, and JetStream keeps one copy (within its duplicate window). Only
// messages with an id are sent again: without one, a second copy would be
// a second event. The failures in a row may last --retry-for; the first
// ack that succeeds ends them.

// lostWithConnection reports whether a publish or its ack failed with the
// connection to NATS (or was never answered), leaving the message's fate
// unknown.
func lostWithConnection(err error) bool {
	return errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// mayRetry reports whether a message with id msgID whose publish failed
// with err is to be sent again, and starts the outage clock at the first
// such failure. A subject without a stream counts as lost while the outage
// lasts (a restarted server answers "no responders" until it has
// recovered its streams).
func (p *publisher) mayRetry(err error, msgID string) bool {
	if p.retryFor <= 0 || msgID == "" {
		return false
	}
	if !lostWithConnection(err) && !(isNoStream(err) && p.outageSince.Load() != 0) {
		return false
	}
	p.outageSince.CompareAndSwap(0, time.Now().UnixNano())
	return !p.outageOver()
}

// outageOver reports whether the failures in a row began retryFor ago.
func (p *publisher) outageOver() bool {
	since := p.outageSince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) >= p.retryFor
}

// acked ends an outage: the server stores what is sent again.
func (p *publisher) ackSucceeded() {
	if p.outageSince.Load() != 0 {
		p.outageSince.Store(0)
	}
}

// awaitConnection waits for the connection to NATS to be up. It reports
// false when ctx ends, the connection closes for good, or the outage
// passes retryFor first.
func (p *publisher) awaitConnection(ctx context.Context) bool {
	nc := p.js.Conn()
	for !nc.IsConnected() {
		if nc.IsClosed() || p.outageOver() {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// resend sends msg again, once the connection is back, while mayRetry
// allows it: err is why its last publish or ack failed. It returns the new
// ack future, or nil and the error to count the message failed with.
func (p *publisher) resend(ctx context.Context, msg *nats.Msg, err error) (jetstream.PubAckFuture, error) {
	id := msg.Header.Get(jetstream.MsgIDHeader)
	for ctx.Err() == nil && p.mayRetry(err, id) {
		if !p.awaitConnection(ctx) {
			break
		}
		again := &nats.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data}
		f, perr := p.js.PublishMsgAsync(again, jetstream.WithStallWait(time.Second))
		switch {
		case perr == nil:
			p.retried.Add(1)
			return f, nil
		case errors.Is(perr, jetstream.ErrTooManyStalledMsgs):
			// Acks outstanding at the limit: try again.
		default:
			err = perr
		}
	}
	return nil, err
}
