package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// closedWithin reads c until the server closes it, failing the test if
// that takes longer than within; it returns what was read.
func closedWithin(t *testing.T, c net.Conn, within time.Duration, what string) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: connection still open after %s (read %q)", what, within, b)
	}
	return string(b)
}

// TestHTTPLimits: a client cannot hold a connection of the HTTP listener
// for ever: not idle between requests, not sending its headers or its body
// slowly; headers and bodies over their limits are refused; and a client
// that stalls does not hold up the shutdown, which closes its connection
// after the grace period and still ends cleanly (Run returns nil).
func TestHTTPLimits(t *testing.T) {
	cfg := testConfig(t, config.BackendMemory)
	a, err := app.New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.HTTPLimits != app.DefaultHTTPLimits {
		t.Fatalf("limits %+v, want the defaults %+v", a.HTTPLimits, app.DefaultHTTPLimits)
	}
	a.HTTPLimits = app.HTTPLimits{
		ReadHeader: 300 * time.Millisecond, Idle: 300 * time.Millisecond, Write: 5 * time.Second,
		MaxHeaderBytes: 4 << 10, Body: 300 * time.Millisecond, MaxBodyBytes: 1 << 10,
		ShutdownGrace: 300 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer cancel()
	base := a.HTTPURL()
	waitFor(t, "ready", func() bool { return httpGet(t, base+"/readyz", nil) == http.StatusOK })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const within = 30 * time.Second

	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if got := closedWithin(t, c, within, "idle"); !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("answer %q", got)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		c := dial()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
		closedWithin(t, c, within, "headers never finished")
	})
	t.Run("slow body", func(t *testing.T) {
		for _, path := range []string{"/api/v1/incidents/x/state", "/api/v1/incidents"} {
			c := dial()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{", path)
			if got := closedWithin(t, c, within, "body never finished"); !strings.HasPrefix(got, "HTTP/1.1 408") {
				t.Fatalf("%s: answer %q, want a 408", path, got)
			}
		}
	})
	t.Run("body too large", func(t *testing.T) {
		resp, err := http.Post(base+"/api/v1/incidents/x/state", "application/json", strings.NewReader(`{"state":"`+strings.Repeat("a", 2<<10)+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
	t.Run("body within the limit", func(t *testing.T) {
		resp, err := http.Post(base+"/api/v1/incidents/x/state", "application/json", strings.NewReader(`{"state":"Resolved"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden { // writes are off: the body reached the handler
			t.Fatalf("status %d, want the 403 of writes turned off", resp.StatusCode)
		}
	})
	t.Run("headers too large", func(t *testing.T) {
		resp, err := http.Get(base + "/api/v1/incidents?source=" + strings.Repeat("s", 8<<10))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownClosesStalledRequests: a client that stalls (here, a body
// that never comes, with no body limit in the way) does not hold up the
// shutdown, which closes its connection after the grace period and still
// ends cleanly: Run returns nil, since the client loses nothing of the
// worker's.
func TestShutdownClosesStalledRequests(t *testing.T) {
	a, err := app.New(testConfig(t, config.BackendMemory), zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.HTTPLimits.Body = time.Hour
	a.HTTPLimits.ShutdownGrace = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer cancel()
	waitFor(t, "ready", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })
	stalled, err := net.Dial("tcp", a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	// A connection whose request is not read yet is not idle for
	// Shutdown either (net/http waits 5 s for its headers), so the
	// shutdown waits for this one in any case.
	fmt.Fprint(stalled, "POST /api/v1/incidents/x/state HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
	const within = 30 * time.Second
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v, want a clean stop: a stalled client loses nothing of the worker's", err)
		}
	case <-time.After(within):
		t.Fatal("Run did not return with a client stalled")
	}
	closedWithin(t, stalled, within, "stalled request after the shutdown")
}
