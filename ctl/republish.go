package ctl

import (
	"context"
	"errors"
	"fmt"
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
//
// A replicated stream electing a new leader (its leader lost) answers "no
// responders" although it exists: such a publish is sent again as one lost
// with the connection, unless JetStream answers that no stream listens on
// its subject (streamGone). A publish whose Nats-Msg-Id a replicated
// stream is still storing from an earlier publish is refused with error
// 10158 (duplicateInProcess): it is sent again a little later, and is then
// acked as a duplicate, or stored if the earlier one failed.

// jsErrDuplicateInProcess is JetStream's error code for a publish whose
// Nats-Msg-Id an earlier publish being replicated holds
// (JSStreamDuplicateMessageConflict, "duplicate message id is in process").
const jsErrDuplicateInProcess jetstream.ErrorCode = 10158

// conflictFor bounds how long a message refused with
// jsErrDuplicateInProcess is sent again, from its first refusal.
const conflictFor = ackTimeout

// lookupTimeout bounds asking JetStream which stream listens on a subject.
const lookupTimeout = 2 * time.Second

// lostWithConnection reports whether a publish or its ack failed with the
// connection to NATS (or was never answered), leaving the message's fate
// unknown.
func lostWithConnection(err error) bool {
	return errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// duplicateInProcess reports whether a publish was refused because an
// earlier one with its Nats-Msg-Id is still being stored.
func duplicateInProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrDuplicateInProcess
}

// mayRetry reports whether a message on subject with id msgID whose
// publish failed with err is to be sent again, and starts the outage clock
// at the first such failure. A subject without a stream counts as lost
// while the outage lasts (a restarted server answers "no responders" until
// it has recovered its streams), and at any time unless JetStream answers
// that no stream listens there (a stream electing a leader answers "no
// responders" too).
func (p *publisher) mayRetry(ctx context.Context, err error, subject, msgID string) bool {
	if p.retryFor <= 0 || msgID == "" {
		return false
	}
	if !lostWithConnection(err) && !(isNoStream(err) && (p.outageSince.Load() != 0 || !p.streamGone(ctx, subject))) {
		return false
	}
	p.outageSince.CompareAndSwap(0, time.Now().UnixNano())
	return !p.outageOver()
}

// streamGone reports whether JetStream answers that no stream listens on
// subject, and remembers the answer: the subject's later publishes then
// fail at once. A stream found is remembered too. No answer (a timeout,
// JetStream unavailable while it elects a leader) is not taken for one.
func (p *publisher) streamGone(ctx context.Context, subject string) bool {
	if _, none := p.noStream.Load(subject); none {
		return true
	}
	if _, found := p.hasStream.Load(subject); found {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	_, err := p.js.StreamNameBySubject(ctx, subject)
	switch {
	case err == nil:
		p.hasStream.Store(subject, true)
		return false
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, nats.ErrNoResponders) && p.js.Conn().IsConnected():
		// No stream, or no JetStream at all on the server connected to.
		p.noStream.Store(subject, true)
		return true
	}
	return false
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

// retryState is what the collector keeps about one message sent again.
type retryState struct {
	tries          int       // times sent again
	conflictsSince time.Time // first jsErrDuplicateInProcess, or zero
}

// pause is how long to wait before sending a message again after err, at
// its try-th time: a little for a Nats-Msg-Id still being stored; for a
// stream not answering, nothing the first time (it may be back already),
// then more and more; nothing after a lost connection (awaitConnection
// waits for it).
func pause(err error, try int) time.Duration {
	try = min(try, 6)
	switch {
	case duplicateInProcess(err):
		return min(2*time.Millisecond<<try, 100*time.Millisecond)
	case isNoStream(err) && try > 0:
		return min(10*time.Millisecond<<try, 250*time.Millisecond)
	}
	return 0
}

// resend sends msg again, once the connection is back, while mayRetry
// allows it (or, for a Nats-Msg-Id still being stored, for conflictFor):
// err is why its last publish or ack failed. It returns the new ack
// future, or nil and the error to count the message failed with.
func (p *publisher) resend(ctx context.Context, msg *nats.Msg, err error, st *retryState) (jetstream.PubAckFuture, error) {
	id := msg.Header.Get(jetstream.MsgIDHeader)
	for ctx.Err() == nil {
		conflict := duplicateInProcess(err)
		if conflict && st.conflictsSince.IsZero() {
			st.conflictsSince = time.Now()
		}
		if conflict && time.Since(st.conflictsSince) >= conflictFor {
			return nil, fmt.Errorf("still in process after %v: %w", conflictFor, err)
		}
		if conflict && !p.js.Conn().IsConnected() {
			// The earlier publish's fate is unknown too: as any lost with
			// the connection, within --retry-for.
			err, conflict = nats.ErrDisconnected, false
		}
		if !conflict && !p.mayRetry(ctx, err, msg.Subject, id) {
			break
		}
		if d := pause(err, st.tries); d > 0 {
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(d):
			}
		}
		if !p.awaitConnection(ctx) {
			break
		}
		again := &nats.Msg{Subject: msg.Subject, Header: msg.Header, Data: msg.Data}
		f, perr := p.js.PublishMsgAsync(again, jetstream.WithStallWait(time.Second))
		switch {
		case perr == nil:
			st.tries++
			if !conflict {
				p.retried.Add(1)
			}
			return f, nil
		case errors.Is(perr, jetstream.ErrTooManyStalledMsgs):
			// Acks outstanding at the limit: try again.
		default:
			err = perr
		}
	}
	return nil, err
}
