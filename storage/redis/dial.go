package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// defaultDialTimeout is go-redis's, for a zero Config.DialTimeout.
const defaultDialTimeout = 5 * time.Second

// keepAlive is go-redis's default dialer's.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}

// dialLog keeps the last error of a client's dials, so that New can say
// why it could not connect when the PING only reports its deadline (go-redis
// retries failed dials until the context ends). A nil *dialLog records
// nothing.
type dialLog struct {
	mu   sync.Mutex
	last error
}

func (d *dialLog) record(err error) {
	if d == nil || err == nil {
		return
	}
	d.mu.Lock()
	d.last = err
	d.mu.Unlock()
}

// lastErr is the last dial error, nil when every dial succeeded.
func (d *dialLog) lastErr() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// dialer is the clients' dialer: go-redis's default one (TCP with its
// keep-alive, then TLS when tc is set, all within timeout), except that
// the TLS handshake ends with ctx too (go-redis's runs for the whole dial
// timeout after a stop was asked for) and that each failure is recorded in
// d. A failed handshake is a *handshakeError.
func dialer(timeout time.Duration, tc *tls.Config, d *dialLog) func(context.Context, string, string) (net.Conn, error) {
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		nd := &net.Dialer{KeepAliveConfig: keepAlive}
		conn, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			d.record(err)
			return nil, err
		}
		if tc == nil {
			return conn, nil
		}
		cfg := tc
		if cfg.ServerName == "" { // as tls.DialWithDialer does
			host, _, herr := net.SplitHostPort(addr)
			if herr != nil {
				host = addr
			}
			cfg = tc.Clone()
			cfg.ServerName = host
		}
		tconn := tls.Client(conn, cfg)
		if err := tconn.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			herr := &handshakeError{addr: addr, err: err}
			d.record(herr)
			return nil, herr
		}
		return tconn, nil
	}
}

// handshakeError is a failed TLS handshake with addr.
type handshakeError struct {
	addr string
	err  error
}

func (e *handshakeError) Error() string {
	msg := fmt.Sprintf("tls handshake with %s: %v", e.addr, e.err)
	if e.notTLS() {
		msg += " (is the server speaking TLS? rediss:// and the tls_* settings need a Redis with TLS enabled on that port; a plain port takes redis://)"
	}
	return msg
}

func (e *handshakeError) Unwrap() error { return e.err }

// notTLS reports whether the handshake failed as it does against a server
// that does not speak TLS: a reply that is no TLS record (a plain Redis
// answering the ClientHello with an error), the connection closed or reset,
// or no answer at all before the timeout (a plain Redis waiting for the
// end of an inline command). A certificate or protocol alert means the
// server does speak TLS.
func (e *handshakeError) notTLS() bool {
	var rh tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.As(e.err, &rh),
		errors.Is(e.err, io.EOF), errors.Is(e.err, io.ErrUnexpectedEOF),
		errors.Is(e.err, syscall.ECONNRESET),
		errors.Is(e.err, os.ErrDeadlineExceeded), errors.Is(e.err, context.DeadlineExceeded),
		errors.As(e.err, &ne) && ne.Timeout():
		return true
	}
	return false
}

// The pauses between the PINGs of waitPing: the first, doubled after each
// until the longest.
const (
	firstPingPause = 100 * time.Millisecond
	maxPingPause   = time.Second
)

// waitPing PINGs through rdb until the server answers, for up to budget:
// while the server cannot be reached yet (transient), it PINGs again after
// a pause (go-redis gives up one PING after a few quick dials). Any other
// failure is returned at once. It returns parent's error as soon as parent
// ends, and, when the budget runs out, an error wrapping
// context.DeadlineExceeded.
func waitPing(parent context.Context, budget time.Duration, rdb goredis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(parent, budget)
	defer cancel()
	pause := firstPingPause
	for {
		err := ping(ctx, parent, rdb)
		switch {
		case err == nil, parent.Err() != nil:
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("no connection within %v: %w", budget, ctx.Err())
		case !transient(err):
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		pause = min(2*pause, maxPingPause)
	}
}

// ping PINGs through rdb within ctx, and returns parent's error as soon as
// parent ends: go-redis's Sentinel client goes on asking the next sentinel
// and retrying its dials for a while after its context ended. The PING
// left behind ends with ctx.
func ping(ctx, parent context.Context, rdb goredis.UniversalClient) error {
	done := make(chan error, 1)
	go func() { done <- rdb.Ping(ctx).Err() }()
	select {
	case err := <-done:
		return err
	case <-parent.Done():
		return parent.Err()
	}
}

// transient reports whether a failed PING may succeed a little later: a
// dial that failed (connection refused, a name not resolved yet, a
// timeout; not a TLS handshake, whose failure is the configuration's), or
// a server still loading its data.
func transient(err error) bool {
	var he *handshakeError
	var oe *net.OpError
	switch {
	case errors.As(err, &he):
		return false
	case errors.As(err, &oe) && oe.Op == "dial":
		return true
	}
	return goredis.IsLoadingError(err)
}
