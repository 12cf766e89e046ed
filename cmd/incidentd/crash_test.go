package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/natsembed/natstest"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/pebble"
	redisstore "github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// daemonEnv makes the test binary run as incidentd: the crash test starts
// it as a child process, so that SIGKILL kills a real worker.
const daemonEnv = "INCIDENTD_TEST_RUN_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSIGKILLLosesNothing publishes a stream of triggers (30 % duplicates,
// half of them redelivering an event id), SIGKILLs the worker process twice
// while it commits, and lets a third one finish. The store must then hold
// exactly what one in-memory fold of the stream gives: nothing lost, nothing
// counted twice, every index exact, the identity pointers right. On Pebble
// and on Redis (standalone, appendonly).
func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the worker process twice in the middle of a stream; skipped with -short")
	}
	t.Run("pebble", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "pebble")
		crashTest(t, dir, fmt.Sprintf("backend = \"pebble\"\npath = %q", path), func(log *zap.Logger) storage.Store {
			cfg := pebble.DefaultConfig()
			cfg.Path = path
			s, err := pebble.New(cfg, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{})
		crashTest(t, t.TempDir(), fmt.Sprintf("backend = \"redis\"\nredis_url = %q", srv.URL()), func(log *zap.Logger) storage.Store {
			s, err := redisstore.New(redisstore.Config{URL: srv.URL()}, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

// crashTest runs the crash test with the [state] lines state; open opens
// the store afterwards.
func crashTest(t *testing.T, dir, state string, open func(*zap.Logger) storage.Store) {
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	srv, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	_, js := natstest.Connect(t, srv.ClientURL())

	path := crashConfig(t, dir, state, srv.ClientURL())
	const n = 30_000
	events := triggers(n)

	// The first worker sets up the stream; publish once it is ready.
	w := startChild(t, path, dir, 1)
	waitUntil(t, "the worker set up its consumer", func() bool {
		_, err := js.Consumer(context.Background(), "INCIDENTS", "incidentd")
		return err == nil
	})
	publishAll(t, js, events)
	// acked is how many messages the workers have acked: a killed
	// worker's unacked ones are pending again only after ack_wait.
	acked := func() (uint64, int) {
		cons, err := js.Consumer(context.Background(), "INCIDENTS", "incidentd")
		if err != nil {
			return 0, 0
		}
		info := cons.CachedInfo()
		return n - info.NumPending - uint64(info.NumAckPending), info.NumAckPending
	}
	for i, at := range []uint64{n / 4, n * 3 / 5} {
		var inFlight int
		waitUntil(t, fmt.Sprintf("worker %d acks %d messages and holds some", i+1, at), func() bool {
			var done uint64
			done, inFlight = acked()
			// Kill while it holds unacked messages (a commit in flight or
			// a batch forming), not in a pause between them.
			return done >= at && (inFlight > 0 || done >= n)
		})
		w.kill(t)
		if inFlight == 0 {
			t.Fatalf("worker %d held no unacked message when it was killed: nothing was tested", i+1)
		}
		w = startChild(t, path, dir, i+2)
	}
	waitUntil(t, "the stream drained", func() bool {
		cons, err := js.Consumer(context.Background(), "INCIDENTS", "incidentd")
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == n
	})
	w.stop(t)

	s := open(log)
	defer s.Close()
	got := storetest.ListAll(t, s)
	want := expectedFold(t, events)
	compareByFingerprint(t, got, want)
	storetest.CheckFilters(t, s, got)
	var report strings.Builder
	if err := ctl.Verify(context.Background(), s, s, &report); err != nil {
		t.Fatalf("verify after the crashes: %v\n%s", err, report.String())
	}
}

// crashConfig runs the worker on an external NATS server, with a short
// ack_wait so that what a killed worker held is redelivered quickly, and no
// sweeper (the events are from January 2026: it would time them out).
func crashConfig(t *testing.T, dir, state, natsURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[state]
%s
[nats]
url = %q
[consumer]
batch_size = 256
ack_wait = "2s"
max_deliver = 20
[dedupe]
sweep_interval = "0s"
[log]
format = "json"
level = "warn"
`, state, natsURL)
	path := filepath.Join(dir, "crash.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// triggers makes n loadgen triggers; 30 % repeat an identity, half of those
// with the same event id.
func triggers(n int) []incident.Event {
	g := loadgen.New(loadgen.Config{Seed: 11, DuplicateRatio: 0.3})
	out := make([]incident.Event, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// publishAll publishes every event without Nats-Msg-Id, so repeated event
// ids reach the worker and only its markers absorb them.
func publishAll(t *testing.T, js jetstream.JetStream, events []incident.Event) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for i := range events {
		subject := "incidents.events." + events[i].Source
		for {
			// A loaded machine acks slowly: wait for room, do not fail.
			f, err := js.PublishAsync(subject, loadgen.Marshal(events[i]), jetstream.WithStallWait(time.Second))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, f)
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishes not acknowledged within a minute")
	}
	// A publish JetStream refused must fail here, not as a store that
	// differs from the fold of every event.
	for i, f := range futures {
		select {
		case err := <-f.Err():
			t.Fatalf("publish %d of %d: %v", i+1, len(futures), err)
		default:
		}
	}
}

// child is one incidentd process.
type child struct {
	cmd  *exec.Cmd
	done chan error
	logf string
}

// startChild starts the test binary as incidentd on config path, its
// output in dir/worker-N.log, and waits until it is ready.
func startChild(t *testing.T, path, dir string, n int) *child {
	t.Helper()
	logf := filepath.Join(dir, fmt.Sprintf("worker-%d.log", n))
	out, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(os.Args[0], "--config", path)
	addr := freeAddr(t)
	cmd.Env = append(os.Environ(), daemonEnv+"=1", "HTTP_LISTEN="+addr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1), logf: logf}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	waitReady(t, addr)
	return c
}

// kill SIGKILLs the worker: no drain, no flush, no close.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-c.done; err == nil {
		t.Fatalf("worker killed with SIGKILL exited 0; log:\n%s", c.log())
	}
}

// stop sends SIGTERM and expects the drained exit 0.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("worker after SIGTERM: %v; log:\n%s", err, c.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker still running 30 s after SIGTERM; log:\n%s", c.log())
	}
}

func (c *child) log() string {
	b, _ := os.ReadFile(c.logf)
	return string(b)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectedFold folds every event, in publish order, in memory: triggers of
// one quiet period fold order-insensitively, so redeliveries after the
// kills may reorder them without changing the result.
func expectedFold(t *testing.T, events []incident.Event) []*incident.Incident {
	t.Helper()
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyed := make([]dedupe.Keyed, len(events))
	for i := range events {
		keyed[i] = dedupe.Keyed{Event: events[i], Fingerprint: fp.Fingerprint(&events[i])}
	}
	n := 0
	res := dedupe.NewFolder(0, func() string { n++; return fmt.Sprint(n) }).Fold(nil, nil, keyed, time.Now())
	return res.Incidents
}

// compareByFingerprint compares what the fold decides (ids and write
// times differ between runs).
func compareByFingerprint(t *testing.T, got, want []*incident.Incident) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d incidents stored, want %d", len(got), len(want))
	}
	byFP := make(map[string]*incident.Incident, len(got))
	for _, in := range got {
		if byFP[in.Fingerprint] != nil {
			t.Fatalf("two incidents of identity %s: %s and %s", in.Fingerprint, byFP[in.Fingerprint].ID, in.ID)
		}
		byFP[in.Fingerprint] = in
	}
	bad := 0
	for _, w := range want {
		g := byFP[w.Fingerprint]
		switch {
		case g == nil:
			t.Errorf("identity %s missing", w.Fingerprint)
		case g.OccurrenceCount != w.OccurrenceCount || !g.FirstSeen.Equal(w.FirstSeen) || !g.LastSeen.Equal(w.LastSeen) ||
			g.Severity != w.Severity || g.PeakSeverity != w.PeakSeverity || g.Title != w.Title || g.State != w.State ||
			!slices.Equal(g.Resources, w.Resources) || g.LatestEventID != w.LatestEventID:
			t.Errorf("identity %s: stored count %d, seen %v..%v, severity %s (peak %s), state %s, latest event %s; want %d, %v..%v, %s (%s), %s, %s",
				w.Fingerprint, g.OccurrenceCount, g.FirstSeen, g.LastSeen, g.Severity, g.PeakSeverity, g.State, g.LatestEventID,
				w.OccurrenceCount, w.FirstSeen, w.LastSeen, w.Severity, w.PeakSeverity, w.State, w.LatestEventID)
		default:
			continue
		}
		if bad++; bad == 10 {
			t.Fatal("more than 10 identities differ")
		}
	}
}
