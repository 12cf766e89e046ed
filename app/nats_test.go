package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

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
