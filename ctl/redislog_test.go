package ctl_test

import (
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
)

// TestRedisClientLogsUseTheLogger: when Redis cannot be reached, go-redis's
// own lines come through incidentctl's logger (console format, named
// incidentctl.go-redis, at most one per kind), not as go-redis's plain
// "redis: 2026/11/26 03:18:48 pool.go:770: ..." lines, before the error.
func TestRedisClientLogsUseTheLogger(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	// A short dial timeout: the store waits three of them (3 s) for Redis
	// to come, less than the logger's 10 s window.
	cfg := t.TempDir() + "/c.toml"
	writeFile(t, cfg, "[state]\nbackend = \"redis\"\nredis_url = \"redis://"+addr+"/0\"\n[state.redis]\ndial_timeout = \"1s\"\n")
	r := runCtl(t, nil, "", "count", "--config", cfg)
	mustCode(t, r, ctl.ExitError)
	if n := strings.Count(r.err, "incidentctl.go-redis"); n != 1 || !strings.Contains(r.err, "failed to dial") {
		t.Errorf("want one go-redis dial warning through the logger, got %d in:\n%s", n, r.err)
	}
	if plain := regexp.MustCompile(`(?m)^redis: \d{4}/`); plain.MatchString(r.err) {
		t.Errorf("go-redis printed its own lines:\n%s", r.err)
	}
	if !strings.Contains(r.err, "incidentctl: ") {
		t.Errorf("no error line:\n%s", r.err)
	}
}

// TestRedisURLCheckedBeforeConnecting: a redis URL that can never work
// exits 2 naming state.redis_url, without a connection attempt.
func TestRedisURLCheckedBeforeConnecting(t *testing.T) {
	for _, u := range []string{"redis://127.0.0.1:1/99", "redis://127.0.0.1:1/0?foo=bar", "redis://:pre?hunter2@127.0.0.1:1/x"} {
		r := runCtl(t, nil, "", "count", "--state-backend", "redis", "--state-redis-url", u)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, "  --state-redis-url (state.redis_url): ") || strings.Contains(r.err, "hunter2") || strings.Contains(r.err, "go-redis") {
			t.Errorf("%s: stderr %q, want a problem naming --state-redis-url and state.redis_url, no password, no connection", u, r.err)
		}
	}
}

// TestMisspeltSecretsNeverPrinted: a secret in a misspelt query parameter
// of a Redis URL (the store flags, STATE_REDIS_URL), a password whose '@'
// and host are missing, and a --nats-url net/url cannot parse are refused
// without the secret, or any piece of it, on stdout or stderr.
func TestMisspeltSecretsNeverPrinted(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"sentinel_pasword flag", nil, []string{"count", "--state-backend", "redis", "--state-redis-url", "redis+sentinel://127.0.0.1:1/mymaster/0?sentinel_pasword=K3YZ9Q"},
			ctl.ExitUsage, `unknown query parameter "sentinel_pasword" (known: sentinel_username, sentinel_password), got "redis+sentinel://127.0.0.1:1/mymaster/0?sentinel_pasword=xxxxx"`},
		{"pasword in STATE_REDIS_URL", map[string]string{"STATE_REDIS_URL": "redis://127.0.0.1:1/0?pasword=K3YZ9Q"}, []string{"count", "--state-backend", "redis"},
			ctl.ExitUsage, `STATE_REDIS_URL (state.redis_url): unknown query parameter "pasword"`},
		{"no @ and host", nil, []string{"count", "--state-backend", "redis", "--state-redis-url", "redis://default:K3YZ9Q"},
			ctl.ExitUsage, `got "redis://default:xxxxx"`},
		{"cluster node", nil, []string{"count", "--state-backend", "redis_cluster", "--state-redis-cluster-nodes", "redis://127.0.0.1:7000?pwd=K3YZ9Q"},
			ctl.ExitUsage, `unknown query parameter "pwd"`},
		{"unparsable --nats-url", nil, []string{"setup", "--nats-url", "nats://alice:K3Y#Z9Q@127.0.0.1:1"},
			ctl.ExitError, "nats connect nats://alice:xxxxx@127.0.0.1:1 (--nats-url): not a valid URL: invalid port after host"},
		{"--nats-url without @ and host", nil, []string{"publish", "--generate", "1", "--nats-url", "nats://alice:K3YZ9Q"},
			ctl.ExitError, "nats connect nats://alice:xxxxx (--nats-url): not a valid URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCtl(t, c.env, "", c.args...)
			mustCode(t, r, c.code)
			if !strings.Contains(r.err, c.want) {
				t.Errorf("stderr %q, want %q", r.err, c.want)
			}
			for _, m := range []string{"K3Y", "Z9Q"} {
				if strings.Contains(r.out+r.err, m) {
					t.Errorf("%q printed:\nstdout: %s\nstderr: %s", m, r.out, r.err)
				}
			}
		})
	}
}
