package redis_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestTLSAgainstPlainServerHints: rediss:// pointed at a plain redis-server
// fails (the server never answers the ClientHello) with an error that
// names the TLS handshake and asks whether the server speaks TLS, and
// leaves the password out; a TLS server with a CA that does not sign its
// certificate fails without that hint (it does speak TLS).
func TestTLSAgainstPlainServerHints(t *testing.T) {
	const pass = "plain-s3cret"
	srv := redistest.StartStandalone(t, redistest.Options{RequirePass: pass})
	url := strings.Replace(srv.URL(), "redis://", "rediss://", 1)
	start := time.Now()
	_, err := redis.New(redis.Config{URL: url, DialTimeout: 300 * time.Millisecond}, nil, nil)
	t.Logf("after %v: %v", time.Since(start), err)
	if err == nil {
		t.Fatal("rediss:// on a plain port opened")
	}
	for _, want := range []string{"tls handshake with " + srv.Addr, "is the server speaking TLS?"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), pass) {
		t.Errorf("error shows the password: %v", err)
	}

	tlsSrv := redistest.StartStandalone(t, redistest.Options{TLS: true})
	other := redistest.GenerateCerts(t, t.TempDir()) // a CA that signed nothing of tlsSrv's
	_, err = redis.New(redis.Config{URL: tlsSrv.URL(), TLSCAFile: other.CA, TLSServerName: "localhost",
		DialTimeout: 300 * time.Millisecond}, nil, nil)
	t.Logf("untrusted certificate: %v", err)
	if err == nil || !strings.Contains(err.Error(), "tls handshake with") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v, want a handshake error naming the certificate", err)
	}
	if strings.Contains(err.Error(), "is the server speaking TLS?") {
		t.Errorf("a certificate failure is hinted as a plain server: %v", err)
	}
}

// TestNewContextGivesUpWhenStopped: a store being opened on sentinels that
// do not answer (go-redis retries until the connect timeout, three dial
// timeouts) and on a plain server with rediss:// returns as soon as its
// context is cancelled, with an error wrapping context.Canceled.
func TestNewContextGivesUpWhenStopped(t *testing.T) {
	plain := redistest.StartStandalone(t, redistest.Options{})
	down1, down2 := redistest.FreePort(t), redistest.FreePort(t)
	for name, url := range map[string]string{
		"sentinels down":      "redis+sentinel://127.0.0.1:" + strconv.Itoa(down1) + ",127.0.0.1:" + strconv.Itoa(down2) + "/mymaster/0",
		"tls on a plain port": "rediss://" + plain.Addr + "/0",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			start := time.Now()
			_, err := redis.NewContext(ctx, redis.Config{URL: url}, nil, nil)
			took := time.Since(start)
			t.Logf("after %v: %v", took, err)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want one wrapping context.Canceled", err)
			}
			if took > 2*time.Second {
				t.Fatalf("gave up %v after the cancel (the connect timeout is 15 s)", took-time.Second)
			}
		})
	}
}
