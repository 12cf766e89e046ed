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

// TestNewWaitsForRedisToStart: a store opened before its redis-server
// starts (nothing on the port for the first 1.5 s) waits for it and opens.
func TestNewWaitsForRedisToStart(t *testing.T) {
	port := redistest.FreePort(t)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		s, err := redis.New(redis.Config{URL: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", DialTimeout: 2 * time.Second}, nil, nil)
		if err == nil {
			err = s.Close()
		}
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	redistest.StartStandalone(t, redistest.Options{Port: port})
	if err := <-done; err != nil {
		t.Fatalf("open while redis-server started 1.5 s later: %v", err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("opened after %v, before the server started", took)
	}
}

// TestNewWaitsThreeDialTimeouts: with nothing on the port (a standalone
// server, or every cluster seed), New retries for three dial timeouts, not
// less, then fails with an error wrapping context.DeadlineExceeded that
// names the last dial failure.
func TestNewWaitsThreeDialTimeouts(t *testing.T) {
	const dial = 400 * time.Millisecond
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	for name, cfg := range map[string]redis.Config{
		"standalone": {URL: "redis://" + addr + "/0", DialTimeout: dial},
		"cluster":    {Cluster: true, ClusterNodes: []string{"redis://" + addr}, DialTimeout: dial},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := redis.New(cfg, nil, nil)
			took := time.Since(start)
			t.Logf("after %v: %v", took, err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want one wrapping context.DeadlineExceeded", err)
			}
			want := "(last dial error: dial tcp " + addr + ": connect: connection refused)"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
			if took < 3*dial || took > 3*dial+time.Second {
				t.Errorf("gave up after %v, want about %v (three dial timeouts)", took, 3*dial)
			}
		})
	}
}
