package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/config"
)

// TestNATSClosedStopsWorker: a connection the client closes for good (here
// closed under the worker) makes Run return ErrNATSClosed with one error
// line, instead of the worker staying up, live and unable to read.
func TestNATSClosedStopsWorker(t *testing.T) {
	cfg := config.Default()
	cfg.State.Backend = config.BackendMemory
	cfg.NATS.EmbeddedListen, cfg.NATS.EmbeddedStoreDir = "127.0.0.1:0", t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	core, logs := observer.New(zapcore.InfoLevel)
	a, err := New(cfg, zap.New(core), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for a.Metrics().Health.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.nc.Close() // not the worker's own shutdown
	select {
	case err := <-done:
		if !errors.Is(err, ErrNATSClosed) {
			t.Fatalf("Run = %v, want ErrNATSClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the connection closed")
	}
	if n := logs.FilterMessageSnippet("nats connection closed for good").Len(); n != 1 {
		t.Errorf("%d 'closed for good' lines, want 1", n)
	}
}

// TestNATSLogLimiter: a repeated warning is let through once a minute,
// with how many were held back; distinct warnings each get their own.
func TestNATSLogLimiter(t *testing.T) {
	var l natsLogLimiter
	t0 := time.Unix(0, 0)
	for i, c := range []struct {
		key        string
		at         time.Duration
		log        bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", 250 * time.Millisecond, false, 0},
		{"b", 300 * time.Millisecond, true, 0},
		{"a", 500 * time.Millisecond, false, 0},
		{"a", time.Minute, true, 2},
		{"a", time.Minute + time.Second, false, 0},
	} {
		log, n := l.allow(c.key, t0.Add(c.at))
		if log != c.log || n != c.suppressed {
			t.Errorf("%d: allow(%s, %s) = %v, %d; want %v, %d", i, c.key, c.at, log, n, c.log, c.suppressed)
		}
	}
}
