package ctl_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/natsembed"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// restartable runs an embedded NATS server on addr with its JetStream
// state in dir; each call starts it again (the test stops it).
func restartable(t *testing.T, addr, dir string) func() *natsembed.Server {
	return func() *natsembed.Server {
		srv, err := natsembed.New(natsembed.Config{Listen: addr, StoreDir: dir}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		return srv
	}
}

// TestPublishMaxPendingOneKeepsOrder: with --max-pending 1, an event sent
// again after the NATS server restarted still reaches the stream before
// the events after it (the next publish waits until it is acked), so a
// file of triggers, acknowledges and resolves is stored in file order.
// Before, the ack collector sent it again while the publishing loop had
// already sent the next event.
func TestPublishMaxPendingOneKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	start := restartable(t, freeAddr(t), dir)
	srv := start()
	env := map[string]string{"NATS_URL": srv.ClientURL()}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	js := jsFor(t, srv.ClientURL())

	const n = 20000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"e-%06d","source":"s%d","title":"t%d"}`+"\n", i, i%7, i%101)
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	writeFile(t, file, b.String())
	done := make(chan result, 1)
	go func() { done <- runCtl(t, env, "", "publish", "-f", file, "--max-pending", "1", "--retry-for", "1m") }()
	for _, at := range []uint64{2000, 8000} {
		waitFor(t, fmt.Sprintf("%d events stored", at), func() bool { return js.Conn().IsConnected() && streamMsgs(t, js, "INCIDENTS") >= at })
		srv.Shutdown()
		time.Sleep(300 * time.Millisecond)
		srv = start()
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("publish did not end")
	}
	mustCode(t, r, ctl.ExitOK)
	if !regexp.MustCompile(` 0 failed \([1-9]\d* sent again`).MatchString(r.out) {
		t.Errorf("summary %q: want none failed and some sent again (else the restarts tested nothing)", r.out)
	}
	waitFor(t, "the stream readable after the restarts", func() bool { return js.Conn().IsConnected() })
	ids := streamIDs(t, js, n)
	for i, id := range ids {
		if want := fmt.Sprintf("e-%06d", i); id != want {
			t.Fatalf("stream message %d is %s, want %s (the file's order)", i+1, id, want)
		}
	}
}

// streamIDs reads the Nats-Msg-Id of every message of INCIDENTS in
// stream order; it fails unless there are n.
func streamIDs(t *testing.T, js jetstream.JetStream, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "INCIDENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for len(ids) < n {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
			got++
		}
		if got == 0 {
			t.Fatalf("the stream ends after %d messages, want %d", len(ids), n)
		}
	}
	if left := streamMsgs(t, js, "INCIDENTS"); left != uint64(n) {
		t.Fatalf("stream holds %d messages, want %d", left, n)
	}
	return ids
}

// TestPublishRidesThroughNATSRestart restarts the NATS server (its
// JetStream state kept) while publish runs with acks outstanding: the
// publishes and acks lost with the connection are sent again with their
// Nats-Msg-Id once it is back, so the run ends with nothing failed and
// the stream holds every event once. With --retry-for 0 the same restart
// fails those events (exit 1), as before retries existed.
func TestPublishRidesThroughNATSRestart(t *testing.T) {
	for _, tc := range []struct {
		retryFor string
		code     int
	}{{"1m", ctl.ExitOK}, {"0s", ctl.ExitError}} {
		t.Run("retry-for="+tc.retryFor, func(t *testing.T) {
			start := restartable(t, freeAddr(t), t.TempDir())
			srv := start()
			env := map[string]string{"NATS_URL": srv.ClientURL()}
			mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
			js := jsFor(t, srv.ClientURL())

			const n = 80000
			done := make(chan result, 1)
			go func() {
				done <- runCtl(t, env, "", "publish", "--generate", strconv.Itoa(n), "--duplicates", "0", "--seed", "11", "--retry-for", tc.retryFor)
			}()
			waitFor(t, "the first 5000 events stored", func() bool { return streamMsgs(t, js, "INCIDENTS") >= 5000 })
			srv.Shutdown()
			time.Sleep(time.Second)
			start()
			var r result
			select {
			case r = <-done:
			case <-time.After(3 * time.Minute):
				t.Fatal("publish did not end")
			}
			mustCode(t, r, tc.code)
			if tc.code != ctl.ExitOK {
				if !regexp.MustCompile(`\d+ failed`).MatchString(r.out) || regexp.MustCompile(` 0 failed`).MatchString(r.out) {
					t.Errorf("summary %q: want failed events", r.out)
				}
				return
			}
			if !regexp.MustCompile(`^published 80000 events: 80000 acked, \d+ dropped by JetStream as duplicates \(Nats-Msg-Id\), 0 failed \(\d+ sent again after the connection to NATS or the stream's leader was lost\)\n$`).MatchString(r.out) {
				t.Errorf("summary %q: want every event acked, none failed, some sent again", r.out)
			}
			waitFor(t, "the stream readable after the restart", func() bool { return js.Conn().IsConnected() })
			if got := streamMsgs(t, js, "INCIDENTS"); got != n {
				t.Errorf("stream holds %d messages, want each of the %d events once", got, n)
			}
		})
	}
}
