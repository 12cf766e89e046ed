package ctl_test

import (
	"strings"
	"testing"
)

// TestWorkerURLsNeverShowTheirPassword: a worker URL that does not parse,
// or is not http(s), is a usage error (exit 2) that shows the URL with its
// password masked, not net/url's error, which quotes pieces of it.
func TestWorkerURLsNeverShowTheirPassword(t *testing.T) {
	urls := map[string]string{
		"http://u:s3c#ret@127.0.0.1:1":    "does not parse",
		"http://u:s3c ret@127.0.0.1:1":    "does not parse",
		"http://u:s3:cr%zzet@127.0.0.1:1": "does not parse",
		"ftp://u:s3cret@127.0.0.1:1":      "scheme must be http or https",
		"u:s3cret@127.0.0.1:1":            "scheme must be http or https",
		"http://u:s3cret@":                "names no host",
	}
	for u, why := range urls {
		for _, args := range [][]string{
			{"list", "--api-url", u},
			{"count", "--api-url", u},
			{"set-state", "x", "Closed", "--api-url", u},
			{"export", "--api-url", u},
			{"migrate", "--from-api-url", u, "--to-backend", "pebble", "--to-path", t.TempDir()},
			{"bench", "--worker-url", u, "--nats-url", "nats://127.0.0.1:1"},
		} {
			r := runCtl(t, nil, "", args...)
			mustCode(t, r, 2)
			if !strings.Contains(r.err, why) || strings.Contains(r.err, "s3") || strings.Contains(r.err, "cr") && strings.Contains(r.err, "zz") {
				t.Errorf("%v: stderr %q: want %q and no piece of the password", args, r.err, why)
			}
		}
	}
}

// TestUnreachableWorkerURLsMaskTheirUserinfo: a valid worker URL nothing
// answers at is named in the error (exit 1) with a token (a user without a
// password) or a password masked.
func TestUnreachableWorkerURLsMaskTheirUserinfo(t *testing.T) {
	for u, shown := range map[string]string{
		"http://tok3n@127.0.0.1:1":     "http://xxxxx@127.0.0.1:1/",
		"http://bob:tok3n@127.0.0.1:1": "http://bob:xxxxx@127.0.0.1:1/",
	} {
		for _, args := range [][]string{
			{"list", "--api-url", u},
			{"get", "inc-a", "--api-url", u},
			{"set-state", "x", "Closed", "--api-url", u},
			{"export", "--api-url", u},
		} {
			r := runCtl(t, nil, "", args...)
			mustCode(t, r, 1)
			if !strings.Contains(r.err, shown) || strings.Contains(r.err, "tok3n") {
				t.Errorf("%v: stderr %q: want %q and no token", args, r.err, shown)
			}
		}
	}
}
