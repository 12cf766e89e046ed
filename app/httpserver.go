package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/api"
)

// HTTPLimits bound what one client of the HTTP listener (and of the
// metrics listener) can hold: a connection that sends its headers slowly,
// stays idle, or does not read its answer is closed, so such clients cannot
// pile up until the process runs out of file descriptors, which the
// embedded nats-server and Pebble need too.
type HTTPLimits struct {
	// ReadHeader is how long a client may take to send a request's headers.
	ReadHeader time.Duration
	// Idle is how long a keep-alive connection may wait for its next
	// request.
	Idle time.Duration
	// Write is how long the answer to a request may take to be written,
	// from the end of its headers; the export (api.ExportPath) instead
	// gets api.ExportWriteStall for each of its writes, however long it
	// runs as a whole.
	Write time.Duration
	// MaxHeaderBytes bounds a request's headers, the request line and its
	// query string included (431 above it).
	MaxHeaderBytes int
	// Body is how long a client may take to send a request's body, once
	// its headers are in (408 after it); MaxBodyBytes bounds the body
	// (413 above it). Only the state change has a body to send; the
	// server reads any request's body, so without these a body sent
	// slowly would hold its connection for ever.
	Body         time.Duration
	MaxBodyBytes int
	// ShutdownGrace is how long a shutdown waits for the requests in
	// flight before closing their connections.
	ShutdownGrace time.Duration
}

// DefaultHTTPLimits are the limits of every worker (README, *The HTTP
// API*, "Slow and idle clients").
var DefaultHTTPLimits = HTTPLimits{
	ReadHeader:     10 * time.Second,
	Idle:           60 * time.Second,
	Write:          60 * time.Second,
	MaxHeaderBytes: 64 << 10,
	Body:           10 * time.Second,
	MaxBodyBytes:   64 << 10,
	ShutdownGrace:  10 * time.Second,
}

// newHTTPServer is a server of h with the limits l; the net/http errors it
// logs (a failed accept, such as "too many open files") go to log as JSON
// like every other line, not to stderr as plain text.
func newHTTPServer(h http.Handler, l HTTPLimits, log *zap.Logger) *http.Server {
	errLog, err := zap.NewStdLogAt(log.Named("http"), zap.WarnLevel)
	if err != nil { // only for a level zap does not know
		errLog = nil
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		IdleTimeout:       l.Idle,
		WriteTimeout:      l.Write,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
}

// applyHTTPLimits sets l on the servers New built.
func (a *App) applyHTTPLimits(l HTTPLimits) {
	for _, s := range []*http.Server{a.srv, a.msrv} {
		if s == nil {
			continue
		}
		s.ReadHeaderTimeout, s.IdleTimeout, s.WriteTimeout, s.MaxHeaderBytes = l.ReadHeader, l.Idle, l.Write, l.MaxHeaderBytes
	}
	a.httpLimits = l
}

// readBody reads a request's body before h runs, within l.Body and
// l.MaxBodyBytes: the connection's read deadline is set for that read
// only, since one left in place while h runs would cancel its request's
// context when it passes (net/http's background read of the connection
// fails then), which is why the servers have no ReadTimeout.
func readBody(h http.Handler, l *HTTPLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(l.Body))
		b, err := io.ReadAll(io.LimitReader(r.Body, int64(l.MaxBodyBytes)+1))
		if err != nil || len(b) > l.MaxBodyBytes {
			// The deadline stays passed: net/http would read up to
			// 256 KiB of the rest after the answer, to keep the
			// connection, and must not wait for it.
			_ = rc.SetReadDeadline(time.Now())
			w.Header().Set("Connection", "close")
			if err != nil {
				api.WriteError(w, http.StatusRequestTimeout, fmt.Sprintf("request body not received within %s: %v", l.Body, err))
				return
			}
			api.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", l.MaxBodyBytes))
			return
		}
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	})
}

// stopHTTP shuts srv down: requests in flight get the grace period to
// finish, then their connections are closed. Clients cut off so (an export
// nobody reads, a client that stalls) are a warning, not a failed
// shutdown: nothing the worker owns is lost with them.
func (a *App) stopHTTP(name string, srv *http.Server, grace time.Duration) {
	t := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
		a.log.Warn("shutdown: "+name+": closed the connections of requests still unfinished after the grace period",
			zap.Duration("grace", grace), zap.Duration("took", time.Since(t)))
		return
	}
	if err != nil {
		a.log.Warn("shutdown: "+name, zap.Duration("took", time.Since(t)), zap.Error(err))
		return
	}
	a.log.Info("shutdown: "+name, zap.Duration("took", time.Since(t)))
}
