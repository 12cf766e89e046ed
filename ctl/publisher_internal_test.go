package ctl

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/natsembed/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishStopsWhenInterrupted: with the NATS server gone and acks
// outstanding, a stopped publish run (Ctrl-C, SIGTERM) waits interruptGrace
// for them, not forever, and counts them as failed (black-box: publish
// ignored SIGTERM for over 75 s). Acks that arrive are counted as acked.
func TestPublishStopsWhenInterrupted(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, js := natstest.Connect(t, srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := newPublisher(ctx, nc, 64, time.Minute) // retries on: the stop still wins
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.publish(ctx, "t.a", fmt.Sprintf("before-%d", i), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.stats().Acked < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("acks before the server went: %+v", p.stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	for i := range 10 {
		if err := p.publish(ctx, "t.a", fmt.Sprintf("after-%d", i), []byte(`{}`)); err != nil {
			t.Fatal(err) // buffered for the reconnect: no error at once
		}
	}
	cancel()
	start := time.Now()
	st := p.wait()
	if took := time.Since(start); took > interruptGrace+3*time.Second {
		t.Errorf("wait took %v after the run was stopped, want about %v", took, interruptGrace)
	}
	if st.Sent != 13 || st.Acked != 3 || st.Failed != 10 {
		t.Errorf("stats %+v, want 13 sent, 3 acked, 10 failed", st)
	}
	if err := p.err(nil); err == nil {
		t.Error("err = nil, want the 10 publishes not acked reported")
	}
}
