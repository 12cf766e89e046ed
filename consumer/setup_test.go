package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// TestSetupResetsLimits: a stream with limits that refuse or drop events,
// and a consumer with settings that filter, slow down or expire it, are
// brought back to what the worker needs, and the report names every
// change; settings Setup does not manage stay.
func TestSetupResetsLimits(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	ctx := context.Background()
	sc := consumer.StreamConfig(cfg.Consumer)
	sc.MaxMsgs, sc.MaxBytes, sc.Discard, sc.DenyDelete, sc.AllowRollup = 100, 1<<20, jetstream.DiscardNew, true, true
	sc.Description = "the operator's"
	if _, err := e.js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	cc := consumer.ConsumerConfig(cfg.Consumer)
	cc.FilterSubject, cc.BackOff, cc.InactiveThreshold, cc.HeadersOnly = "incidents.events.gw", []time.Duration{time.Second, 5 * time.Second}, time.Hour, true
	if _, err := e.js.CreateConsumer(ctx, cfg.Consumer.Stream, cc); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PauseConsumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, err := consumer.Setup(ctx, e.js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	report := strings.Join(rep.Actions, "\n")
	for _, want := range []string{"max_msgs 100 -> unlimited", "max_bytes 1048576 -> unlimited", "discard new -> old",
		"filter_subjects [incidents.events.gw] -> []", "backoff", "inactive_threshold 1h0m0s -> 0s", "headers_only true -> false",
		"allow_rollup_hdrs true -> false", "-> not paused"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	s, err := e.js.Stream(ctx, cfg.Consumer.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if have := s.CachedInfo().Config; have.MaxMsgs != -1 || have.MaxBytes != -1 || have.Discard != jetstream.DiscardOld || !have.DenyDelete ||
		have.AllowRollup || have.Description != "the operator's" {
		t.Errorf("stream after setup: max_msgs %d max_bytes %d discard %v deny_delete %v rollup %v description %q",
			have.MaxMsgs, have.MaxBytes, have.Discard, have.DenyDelete, have.AllowRollup, have.Description)
	}
	c, err := e.js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if have := c.CachedInfo().Config; have.FilterSubject != "" || have.HeadersOnly || have.BackOff != nil || have.InactiveThreshold != 0 {
		t.Errorf("consumer after setup: %+v", have)
	}
	if info, err := c.Info(ctx); err != nil || info.Paused {
		t.Errorf("consumer still paused after setup: %v", err)
	}
	rep, err = consumer.Setup(ctx, e.js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Actions {
		if !strings.HasSuffix(a, " unchanged") {
			t.Errorf("second setup: %s", a)
		}
	}
}

// TestSetupRefusesUnusableStreams: a sealed stream is a mismatch, and a
// stream that cannot be created because another one listens on its
// subjects is named.
func TestSetupRefusesUnusableStreams(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	ctx := context.Background()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"incidents.events.gw"}}); err != nil {
		t.Fatal(err)
	}
	_, err := consumer.Setup(ctx, e.js, cfg.Consumer)
	if err == nil || !strings.Contains(err.Error(), "stream OTHER, on [incidents.events.gw], overlaps incidents.events.>") {
		t.Fatalf("overlap: %v", err)
	}
	if err := e.js.DeleteStream(ctx, "OTHER"); err != nil {
		t.Fatal(err)
	}
	e = newEnv(t) // a fresh server: re-creating names on one races the deletion
	narrow := consumer.StreamConfig(cfg.Consumer)
	narrow.Subjects = []string{"incidents.events.gw"}
	if _, err := e.js.CreateStream(ctx, narrow); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"incidents.events.x"}}); err != nil {
		t.Fatal(err)
	}
	_, err = consumer.Setup(ctx, e.js, cfg.Consumer)
	if err == nil || !strings.Contains(err.Error(), "stream OTHER, on [incidents.events.x], overlaps incidents.events.>") {
		t.Fatalf("overlap on update: %v", err)
	}
	e = newEnv(t)
	sc := consumer.StreamConfig(cfg.Consumer)
	if _, err := e.js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	sc.Sealed = true
	if _, err := e.js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	_, err = consumer.Setup(ctx, e.js, cfg.Consumer)
	if !errors.Is(err, consumer.ErrMismatch) || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("sealed: %v", err)
	}
	// Settings the server will not turn off are a mismatch, not an
	// "updated" line: per-message TTLs (a Nats-TTL header expires an
	// event before it is consumed), and rollups while message schedules
	// are on (the server keeps allow_rollup_hdrs without an error).
	for _, c := range []struct {
		name string
		set  func(*jetstream.StreamConfig)
		want string
	}{
		{"ttl", func(sc *jetstream.StreamConfig) { sc.AllowMsgTTL = true }, "allow_msg_ttl"},
		{"schedules", func(sc *jetstream.StreamConfig) { sc.AllowMsgSchedules = true }, "still has [allow_rollup_hdrs true -> false]"},
	} {
		e = newEnv(t)
		sc := consumer.StreamConfig(cfg.Consumer)
		c.set(&sc)
		if _, err := e.js.CreateStream(ctx, sc); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = consumer.Setup(ctx, e.js, cfg.Consumer)
		if !errors.Is(err, consumer.ErrMismatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a mismatch naming %q", c.name, err, c.want)
		}
	}
}

// TestSetupUpdatesAfterRestart changes consumer settings on a server that
// restarted since the consumer was made: nats-server 2.15 answers the
// first update after its start with the consumer as it was then (a
// snapshot it keeps for that first answer), which must not read as a
// setting the server refused (found by a black-box run: `incidentctl
// setup` beside a running worker failed, and a new pod changing ack_wait
// exited, while the change had been made).
func TestSetupUpdatesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	ctx := context.Background()
	start := func() (*natsembed.Server, jetstream.JetStream) {
		srv, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: dir}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		_, js := natstest.Connect(t, srv.ClientURL())
		return srv, js
	}
	srv, js := start()
	if _, err := consumer.Setup(ctx, js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	_, js = start()
	md, aw := cfg.Consumer.MaxDeliver, cfg.Consumer.AckWait.Duration
	cfg.Consumer.MaxDeliver, cfg.Consumer.AckWait.Duration = md+2, aw+time.Second
	rep, err := consumer.Setup(ctx, js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if report := strings.Join(rep.Actions, "\n"); !strings.Contains(report, fmt.Sprintf("max_deliver %d -> %d", md, md+2)) {
		t.Errorf("report lacks the max_deliver change:\n%s", report)
	}
	c, err := js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if have := c.CachedInfo().Config; have.MaxDeliver != md+2 || have.AckWait != aw+time.Second {
		t.Errorf("consumer after setup: max_deliver %d, ack_wait %s; want %d, %s", have.MaxDeliver, have.AckWait, md+2, aw+time.Second)
	}
}

// TestSetupSaysWhyNoAnswer: a server without JetStream, and a user the
// server refuses the stream's creation, make Setup's error say so (found
// by a black-box run: "no responders available for request", and "context
// deadline exceeded" after 5 s, the cause only on an earlier warning).
func TestSetupSaysWhyNoAnswer(t *testing.T) {
	cfg := testConfig().Consumer
	for _, tc := range []struct {
		name string
		opts server.Options
		url  func(addr string) string
		want string
	}{
		{"no JetStream", server.Options{}, func(a string) string { return "nats://" + a }, "is JetStream enabled on the server?"},
		{"permission refused", server.Options{JetStream: true, Users: []*server.User{{Username: "w", Password: "w",
			Permissions: &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.CREATE.>"}}}}}},
			func(a string) string { return "nats://w:w@" + a }, `the server refused a permission: nats: permissions violation: Permissions Violation for Publish to "$JS.API.STREAM.CREATE.` + cfg.Stream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", -1, true, true
			if o.JetStream {
				o.StoreDir = t.TempDir()
			}
			srv, err := server.NewServer(&o)
			if err != nil {
				t.Fatal(err)
			}
			go srv.Start()
			t.Cleanup(srv.Shutdown)
			if !srv.ReadyForConnections(10 * time.Second) {
				t.Fatal("nats server not ready")
			}
			_, js := natstest.Connect(t, tc.url(srv.Addr().String()))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = consumer.Setup(ctx, js, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Setup: %v; want it to say %q", err, tc.want)
			}
		})
	}
}
