package app_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/metrics"
)

// TestNATSCredentialsRotated: the server's password changes (a config
// reload) under a connected worker, which the server then refuses at every
// reconnection. The worker keeps trying well past nats.go's "same auth
// error twice" abort, counts each refusal, logs it once (rate-limited), and
// once the old password is back it reconnects and ingests again.
func TestNATSCredentialsRotated(t *testing.T) {
	opts := server.Options{Username: "alice", Password: "0ldpw", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true}
	srv := startNATS(t, opts)
	opts.Port = srv.Addr().(*net.TCPAddr).Port
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := testConfig(t, config.BackendMemory)
	cfg.NATS.URL = srv.ClientURL()
	cfg.NATS.User, cfg.NATS.Password = "alice", "0ldpw"
	a, err := app.New(cfg, zap.New(core), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "ready", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })

	rotated := opts
	rotated.Password = "n3wpw"
	if err := srv.ReloadOptions(&rotated); err != nil {
		t.Fatal(err)
	}
	authErrs := a.Metrics().NATSErrors.WithLabelValues(metrics.NATSAuth)
	waitFor(t, "4 refused logins", func() bool { return testutil.ToFloat64(authErrs) >= 4 })
	select {
	case err := <-done:
		t.Fatalf("Run returned while the credentials were refused: %v", err)
	default:
	}
	if code := httpGet(t, a.HTTPURL()+"/readyz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d while refused, want 503", code)
	}
	if n := logs.FilterMessage("nats client error").FilterField(zap.String("kind", metrics.NATSAuth)).Len(); n != 1 {
		t.Errorf("%d auth warnings logged within a minute, want 1", n)
	}

	if err := srv.ReloadOptions(&opts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nats reconnected", func() bool { return logs.FilterMessage("nats reconnected").Len() > 0 })
	waitFor(t, "ready again", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("alice", "0ldpw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ev := `{"id":"e1","source":"gw","type":"Performance","severity":"P2","title":"slow","occurred_at":"2026-02-01T00:00:00Z"}`
	if err := nc.Publish("incidents.events.gw", []byte(ev)); err != nil {
		t.Fatal(err)
	}
	var list api.ListResponse
	waitFor(t, "the incident", func() bool {
		return httpGet(t, a.HTTPURL()+"/api/v1/incidents", &list) == http.StatusOK && list.Total == 1
	})
	stopRun(t, cancel, done)
}
