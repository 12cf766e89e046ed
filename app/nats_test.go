package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// authNATS starts a nats-server that lets in only the user or token of
// opts, and returns its URL (without credentials).
func authNATS(t *testing.T, opts server.Options) string { return natstest.Start(t, opts) }

// TestWorkerNATSCredentials: the worker logs in with [nats] user and
// password, or token; a wrong secret fails naming the server without the
// secret.
func TestWorkerNATSCredentials(t *testing.T) {
	userURL := authNATS(t, server.Options{Username: "alice", Password: "s3cretpw"})
	tokenURL := authNATS(t, server.Options{Authorization: "t0kensecret"})
	cases := []struct {
		name    string
		url     string
		set     func(*config.NATSConfig)
		wantErr string
	}{
		{"user and password", userURL, func(n *config.NATSConfig) { n.User, n.Password = "alice", "s3cretpw" }, ""},
		{"token", tokenURL, func(n *config.NATSConfig) { n.Token = "t0kensecret" }, ""},
		{"password in the URL", strings.Replace(userURL, "nats://", "nats://alice:s3cretpw@", 1), func(*config.NATSConfig) {}, ""},
		{"wrong password", userURL, func(n *config.NATSConfig) { n.User, n.Password = "alice", "wr0ngpw" }, "Authorization Violation"},
		{"wrong password in the URL", strings.Replace(userURL, "nats://", "nats://alice:wr0ngpw@", 1), func(*config.NATSConfig) {}, "nats://alice:xxxxx@"},
		{"no credentials", userURL, func(*config.NATSConfig) {}, "Authorization Violation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, config.BackendMemory)
			cfg.NATS.URL = c.url
			c.set(&cfg.NATS)
			a, err := app.New(cfg, zaptest.NewLogger(t), nil)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				release(t, a)
				return
			}
			if err == nil {
				release(t, a)
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "wr0ngpw") {
				t.Fatalf("error %q: want %q and no password", err, c.wantErr)
			}
		})
	}
}

// TestNATSConnectErrorNamesURL: an unreachable server is named, masked,
// with where its URL came from.
func TestNATSConnectErrorNamesURL(t *testing.T) {
	const url = "nats://alice:s3cretpw@127.0.0.1:1"
	file := filepath.Join(t.TempDir(), "incidentd.toml")
	if err := os.WriteFile(file, []byte("[nats]\nurl = \""+url+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		env  map[string]string
		want string
	}{
		{"NATS_URL", "", map[string]string{"NATS_URL": url}, "nats connect nats://alice:xxxxx@127.0.0.1:1 (NATS_URL): nats: no servers available for connection"},
		{"file", file, nil, "nats connect nats://alice:xxxxx@127.0.0.1:1 (nats.url in " + file + "): nats: no servers available for connection"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Load(c.path, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			cfg.State.Backend, cfg.HTTP.Listen = config.BackendMemory, "127.0.0.1:0"
			a, err := app.New(cfg, zaptest.NewLogger(t), nil)
			if err == nil {
				release(t, a)
				t.Fatal("connected")
			}
			if err.Error() != c.want {
				t.Fatalf("error %q\nwant  %q", err, c.want)
			}
		})
	}
}

// TestNATSConnectErrorHidesUnparsablePasswords: nats.Connect's error for a
// URL net/url cannot parse quotes the URL, or a piece of it that may lie
// inside the password; NATSConnectError shows neither, only the reason.
func TestNATSConnectErrorHidesUnparsablePasswords(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"nats://alice:K3Y#Z9Q@127.0.0.1:1", "nats connect nats://alice:xxxxx@127.0.0.1:1 (--nats-url): not a valid URL: invalid port after host (percent-encode"},
		{"nats://alice:K3YZ9Q", "nats connect nats://alice:xxxxx (--nats-url): not a valid URL: invalid port after host"},
		{"nats://alice:K3Y/Z9Q@127.0.0.1:1", "not a valid URL: invalid port after host"},
		{"nats://alice:K3Y%zzZ9Q@127.0.0.1:1", "not a valid URL: invalid URL escape"},
		{"nats://alice:K3Y Z9Q@127.0.0.1:1", "not a valid URL: net/url: invalid userinfo"},
		{"nats://127.0.0.1:1,nats://bob:K3Y#Z9Q@127.0.0.1:2", "nats connect nats://127.0.0.1:1,nats://bob:xxxxx@127.0.0.1:2 (--nats-url): not a valid URL: invalid port after host"},
	} {
		t.Run(c.url, func(t *testing.T) {
			nc, err := nats.Connect(c.url)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			msg := app.NATSConnectError(c.url, "--nats-url", err).Error()
			t.Logf("nats.Connect: %v\nshown: %s", err, msg)
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want %q in it", msg, c.want)
			}
			for _, m := range []string{"K3Y", "Z9Q"} {
				if strings.Contains(msg, m) {
					t.Errorf("error shows %q: %s", m, msg)
				}
			}
		})
	}
}

// release runs a with a context already ended: it binds, shuts down and
// frees what New started.
func release(t *testing.T, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Error(err)
	}
}

// TestNATSURLSecretsNotLogged: a token or a password in nats.url appears in
// neither the "nats connected" line nor the "nats reconnected" one (after
// the server restarted on its port), nor anywhere else in the log; the
// lines name the server with the secret masked.
func TestNATSURLSecretsNotLogged(t *testing.T) {
	for _, c := range []struct {
		name, userinfo, secret, shown string
		opts                          server.Options
	}{
		{"token", "tok3n", "tok3n", "nats://xxxxx@127.0.0.1:", server.Options{Authorization: "tok3n"}},
		{"password", "alice:s3cretpw", "s3cretpw", "nats://alice:xxxxx@127.0.0.1:", server.Options{Username: "alice", Password: "s3cretpw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs = "127.0.0.1", -1, true, t.TempDir(), true
			srv := startNATS(t, opts)
			opts.Port = srv.Addr().(*net.TCPAddr).Port
			core, logs := observer.New(zapcore.DebugLevel)
			cfg := testConfig(t, config.BackendMemory)
			cfg.NATS.URL = fmt.Sprintf("nats://%s@127.0.0.1:%d", c.userinfo, opts.Port)
			a, err := app.New(cfg, zap.New(core), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			waitFor(t, "ready", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })
			srv.Shutdown()
			srv.WaitForShutdown()
			startNATS(t, opts)
			waitFor(t, "nats reconnected", func() bool { return logs.FilterMessage("nats reconnected").Len() > 0 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, msg := range []string{"nats connected", "nats reconnected"} {
				l := logs.FilterMessage(msg).All()
				if len(l) == 0 {
					t.Fatalf("no %q line", msg)
				}
				if u, _ := l[0].ContextMap()["url"].(string); !strings.HasPrefix(u, c.shown) {
					t.Errorf("%s: url %q, want it to start with %q", msg, u, c.shown)
				}
			}
			for _, e := range logs.All() {
				if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, c.secret) {
					t.Errorf("the secret is logged: %s", line)
				}
			}
		})
	}
}

// startNATS runs a nats-server with opts until the test ends.
func startNATS(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s
}
