package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/natsembed/natstest"
)

// startCluster starts a 3-node nats-server cluster with JetStream (see
// natstest.Cluster).
func startCluster(t *testing.T) []*server.Server {
	servers, _ := natstest.Cluster(t)
	return servers
}

// replicatedStream creates the INCIDENTS stream, 3 replicas, on the
// cluster servers and returns it, read through the first server.
func replicatedStream(t *testing.T, servers []*server.Server) jetstream.Stream {
	t.Helper()
	return clusterStream(t, servers, 3)
}

// clusterStream creates the INCIDENTS stream with replicas replicas on
// the cluster servers and returns it, read through the first server.
func clusterStream(t *testing.T, servers []*server.Server, replicas int) jetstream.Stream {
	t.Helper()
	js := clusterJS(t, servers[0].ClientURL())
	var st jetstream.Stream
	poll(t, "the replicated stream created", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "INCIDENTS", Subjects: []string{"incidents.events.>"}, Replicas: replicas})
		return err == nil
	})
	poll(t, "the stream's leader", func() bool { return streamLeader(st) != "" })
	return st
}

// streamLeader is the name of st's leader server, or "" when it has none
// or does not answer.
func streamLeader(st jetstream.Stream) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// storedMsgs is how many messages st holds, or -1 when it does not answer.
func storedMsgs(st jetstream.Stream) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil {
		return -1
	}
	return int64(info.State.Msgs)
}

// TestPublishDuplicateInProcessOnCluster: on a replicated stream, an event
// published right after another with its id is refused with 10158
// ("duplicate message id is in process") while the first is replicated;
// publish sends it again and counts it as the duplicate it is (black-box:
// 200 of 400 events failed, exit 1, where a single server drops 200 as
// duplicates).
func TestPublishDuplicateInProcessOnCluster(t *testing.T) {
	servers := startCluster(t)
	st := replicatedStream(t, servers)
	var lines bytes.Buffer
	for i := range 200 {
		line := fmt.Sprintf(`{"id":"dup-%d","source":"llm-gateway","title":"t"}`+"\n", i)
		lines.WriteString(line + line)
	}
	file := filepath.Join(t.TempDir(), "twice.ndjson")
	if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Run(ctx, []string{"publish", "-f", file, "--nats-url", servers[0].ClientURL()}, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	want := "published 400 events: 400 acked, 200 dropped by JetStream as duplicates (Nats-Msg-Id), 0 failed\n"
	if code != ExitOK || out.String() != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out.String(), errb.String(), want)
	}
	if got := storedMsgs(st); got != 200 {
		t.Errorf("stream holds %d messages, want each of the 200 events once", got)
	}
}

// TestDuplicateInProcessSentAgain: a publish refused with 10158 is sent
// again a little later whatever --retry-for (it is no outage); other API
// errors are not.
func TestDuplicateInProcessSentAgain(t *testing.T) {
	conflict := fmt.Errorf("ack: %w", &jetstream.APIError{Code: 409, ErrorCode: 10158, Description: "duplicate message id is in process"})
	if !duplicateInProcess(conflict) {
		t.Error("duplicateInProcess(10158) = false")
	}
	for _, err := range []error{jetstream.ErrStreamNotFound, &jetstream.APIError{Code: 503, ErrorCode: 10008}, nats.ErrNoResponders, errors.New("x")} {
		if duplicateInProcess(err) {
			t.Errorf("duplicateInProcess(%v) = true", err)
		}
	}
	if d := pause(conflict, 0); d <= 0 || d > 10*time.Millisecond {
		t.Errorf("first pause after 10158: %v, want a few ms", d)
	}
	if d := pause(conflict, 50); d > 100*time.Millisecond {
		t.Errorf("pause after 10158 grows to %v, want 100ms at most", d)
	}
	if d := pause(jetstream.ErrNoStreamResponse, 0); d != 0 {
		t.Errorf("first pause after no responders: %v, want none", d)
	}
}

// TestPublishRidesThroughStreamLeaderElection: the replicated stream's
// leader stops mid-run, acks outstanding; while the others elect a new
// one, the publishes in flight to it go unanswered and later ones may get
// "no responders". publish sends those events again with their
// Nats-Msg-Id, and the run ends with every event acked and stored once.
func TestPublishRidesThroughStreamLeaderElection(t *testing.T) {
	servers := startCluster(t)
	st := replicatedStream(t, servers)
	leaderName := streamLeader(st)
	var leader, other *server.Server
	for _, s := range servers {
		if s.Name() == leaderName {
			leader = s
		} else {
			other = s
		}
	}
	if leader == nil {
		t.Fatalf("stream leader %q is none of the servers", leaderName)
	}
	// Connected to a server that stays: the publishes meet the election,
	// not a lost connection.
	nc, err := nats.Connect(other.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A publish in flight to a leader that stops is never answered: it
	// fails after the ack timeout, shortened here.
	p, err := newPublisherAckTimeout(ctx, nc, 4096, time.Minute, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60000
	done := make(chan error, 1)
	go func() { done <- publishGenerated(ctx, p, publishFlags{generate: n, seed: 3, subject: DefaultSubject}) }()
	checkSt, err := clusterJS(t, other.ClientURL()).Stream(context.Background(), "INCIDENTS")
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the first 5000 events stored", func() bool { return storedMsgs(checkSt) >= 5000 })
	leader.Shutdown()
	if err := <-done; err != nil {
		t.Fatalf("publish: %v", err)
	}
	s := p.wait()
	t.Logf("stats %+v", s)
	if err := p.err(nil); err != nil || s.Sent != n || s.Acked != n || s.Failed != 0 {
		t.Errorf("stats %+v, err %v: want all %d acked, none failed", s, err, n)
	}
	poll(t, "the stream's new leader", func() bool { l := streamLeader(checkSt); return l != "" && l != leaderName })
	if got := storedMsgs(checkSt); got != n {
		t.Errorf("stream holds %d messages, want each of the %d events once", got, n)
	}
}

// TestPublishRidesThroughStreamWithoutLeader: the server holding a stream
// (one replica) stops while the run is idle, nothing outstanding, and
// comes back: meanwhile every publish gets "no responders" although
// JetStream names the stream, so the events are sent again with their
// Nats-Msg-Id until it is back, not failed as "no stream" (black-box: a
// failover stopped the run with "no stream", exit 1).
func TestPublishRidesThroughStreamWithoutLeader(t *testing.T) {
	servers, opts := natstest.Cluster(t)
	st := clusterStream(t, servers, 1)
	holder := streamLeader(st)
	var down int
	for i, s := range servers {
		if s.Name() == holder {
			down = i
		}
	}
	if servers[down].Name() != holder {
		t.Fatalf("stream server %q is none of the servers", holder)
	}
	up := servers[(down+1)%3]
	nc, err := nats.Connect(up.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := newPublisherAckTimeout(ctx, nc, 1024, time.Minute, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const before, after = 2000, 5000
	if err := publishGenerated(ctx, p, publishFlags{generate: before, seed: 5, subject: DefaultSubject}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the first events acked", func() bool { return p.stats().Acked == before })
	servers[down].Shutdown()
	servers[down].WaitForShutdown()
	done := make(chan error, 1)
	go func() {
		done <- publishGenerated(ctx, p, publishFlags{generate: after, seed: 6, subject: DefaultSubject})
	}()
	poll(t, "events sent again, or the run stopped", func() bool { return p.stats().Retried > 0 || len(done) > 0 })
	natstest.StartNode(t, opts[down])
	if err := <-done; err != nil {
		t.Fatalf("publish: %v", err)
	}
	s := p.wait()
	const n = before + after
	if err := p.err(nil); err != nil || s.Sent != n || s.Acked != n || s.Failed != 0 {
		t.Errorf("stats %+v, err %v: want all %d acked, none failed", s, err, n)
	}
	checkSt, err := clusterJS(t, up.ClientURL()).Stream(context.Background(), "INCIDENTS")
	if err != nil {
		t.Fatal(err)
	}
	if got := storedMsgs(checkSt); got != n {
		t.Errorf("stream holds %d messages, want each of the %d events once", got, n)
	}
}

func clusterJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, url, nats.MaxReconnects(-1))
	return js
}

// poll waits up to 20 s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
