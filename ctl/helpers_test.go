package ctl_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/natsembed/natstest"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/backend"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// result is one incidentctl invocation.
type result struct {
	code     int
	out, err string
}

// runCtl runs incidentctl with args, stdin and environment.
func runCtl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	o := ctl.IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Env: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := ctl.Run(ctx, args, o)
	t.Logf("incidentctl %s -> %d\nstderr: %s", strings.Join(args, " "), code, clipLog(errb.String()))
	return result{code: code, out: out.String(), err: errb.String()}
}

func clipLog(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}

// embeddedNATS starts a nats-server with JetStream on a free port.
func embeddedNATS(t *testing.T) string {
	t.Helper()
	s, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func jsFor(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, url)
	return js
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// filledPebble makes a Pebble store in a new directory holding the fold of
// n loadgen events with acknowledges and resolves (so some identities have
// reopened incidents), closes it and returns the directory.
func filledPebble(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir() + "/pebble"
	st := config.Default().State
	st.Path = dir
	s, err := backend.Open(st, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillStore(t, s, n)
	return dir
}

// filledWithIncidents is filledPebble with the incidents it holds.
func filledWithIncidents(t *testing.T, n int) (string, []*incident.Incident) {
	t.Helper()
	src := filledPebble(t, n)
	s := openPebble(t, src)
	defer s.Close()
	return src, allIncidents(t, s)
}

func fillStore(t *testing.T, s storage.Store, n int) {
	t.Helper()
	cfg := loadgen.DefaultConfig()
	cfg.AckRatio, cfg.ResolveRatio = 0.05, 0.15
	g := loadgen.New(cfg)
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	folder := dedupe.NewFolder(15*time.Minute, uuid.NewString)
	now := func() time.Time { return time.Now().UTC() }
	for done := 0; done < n; {
		batch := make([]dedupe.Keyed, 0, 100)
		for ; len(batch) < 100 && done < n; done++ {
			ev := g.Next()
			batch = append(batch, dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)})
		}
		if _, _, err := storage.Ingest(context.Background(), s, folder, batch, now); err != nil {
			t.Fatal(err)
		}
	}
}

func mustCode(t *testing.T, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, want, clipLog(r.out), clipLog(r.err))
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openPebble(t *testing.T, dir string) storage.Store {
	t.Helper()
	st := config.Default().State
	st.Path = dir
	s, err := backend.Open(st, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// heldRedis starts a Redis server and opens a store on it, as a running
// worker holds its store, and returns the store with the incidentctl flags
// that name it.
func heldRedis(t *testing.T) (storage.Store, []string) {
	t.Helper()
	srv := redistest.StartStandalone(t, redistest.Options{})
	st := config.Default().State
	st.Backend, st.RedisURL = config.BackendRedis, srv.URL()
	s, err := backend.Open(st, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, []string{"--state-backend", "redis", "--state-redis-url", srv.URL()}
}

// runApp runs a worker on cfg until the returned stop is called (or the
// test ends, when a stop not called yet runs); Run must end without error.
func runApp(t *testing.T, cfg config.Config) (*app.App, func()) {
	t.Helper()
	a, err := app.New(cfg, zaptest.NewLogger(t), nil) // nil: with the process collector
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(stop)
	return a, stop
}

// waitReady waits until the worker's /readyz answers 200: its streams and
// consumer exist.
func waitReady(t *testing.T, a *app.App) {
	t.Helper()
	waitFor(t, "the worker to be ready", func() bool {
		resp, err := http.Get(a.HTTPURL() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
