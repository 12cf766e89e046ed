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
	r := runCtl(t, nil, "", "count", "--state-backend", "redis", "--state-redis-url", "redis://"+addr+"/0")
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
		if !strings.Contains(r.err, "  state.redis_url: ") || strings.Contains(r.err, "hunter2") || strings.Contains(r.err, "go-redis") {
			t.Errorf("%s: stderr %q, want a state.redis_url problem, no password, no connection", u, r.err)
		}
	}
}
