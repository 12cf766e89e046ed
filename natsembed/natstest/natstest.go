// Package natstest starts real nats-server instances for tests that need a
// server natsembed does not configure (authentication, say): in-process, on
// a free loopback port, with JetStream in the test's temporary directory.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a nats-server with opts on a free loopback port, with
// JetStream under t.TempDir(), stops it when the test ends and returns its
// client URL (without credentials).
func Start(t testing.TB, opts server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs = "127.0.0.1", -1, true, t.TempDir(), true
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s.ClientURL()
}
