package ctl_test

import (
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/natsembed"
)

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
			dir := t.TempDir()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			start := func() *natsembed.Server {
				srv, err := natsembed.New(natsembed.Config{Listen: addr, StoreDir: dir}, zaptest.NewLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(srv.Shutdown)
				return srv
			}
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
