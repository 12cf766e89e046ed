package pebble

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestFatalExitsOne: what Pebble reports as fatal (a WAL write failed on a
// full disk, found by a black-box run: a panic, a stack trace and exit 2)
// ends the process with one error line naming the cause, and exit 1.
func TestFatalExitsOne(t *testing.T) {
	if os.Getenv("INCIDENTD_TEST_PEBBLE_FATAL") == "1" {
		log, _ := zap.NewProduction()
		zapLogger{log.Sugar()}.Fatalf("pebble: fatal commit error: %v", errors.New("write 000004.log: no space left on device"))
		return // not reached
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFatalExitsOne$")
	cmd.Env = append(os.Environ(), "INCIDENTD_TEST_PEBBLE_FATAL=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output:\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "pebble cannot go on") || !strings.Contains(text, "no space left on device") {
		t.Errorf("the log does not name the cause:\n%s", text)
	}
	if strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") {
		t.Errorf("a panic or stack trace:\n%s", text)
	}
}

// TestBackgroundErrorsRateLimited: a flush failing in a loop (Pebble
// retries at once: a thousand lines a second on a full disk, found by a
// black-box run) is logged once, then at most once per bgErrorEvery, and
// every failure is counted.
func TestBackgroundErrorsRateLimited(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	b := &backgroundErrors{log: zap.New(core)}
	for range 1000 {
		b.seen(errors.New("write 000012.sst: no space left on device"))
	}
	if got := b.read(); got != 1000 {
		t.Errorf("counted %d, want 1000", got)
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d lines logged, want 1", n)
	}
	b.logged = b.logged.Add(-bgErrorEvery) // as if the interval passed
	b.seen(errors.New("again"))
	all := logs.All()
	if len(all) != 2 || all[1].ContextMap()["not_logged_since_last"] != int64(999) {
		t.Errorf("second line %+v, want one saying 999 were not logged", all[len(all)-1].ContextMap())
	}
}

// TestWatchGivesUp: a compaction whose background work keeps failing (a
// full disk: incidentctl prune --compact printed "compacting" for ever, found
// by a black-box run) is cancelled with the last error as the cause; one
// whose errors stop is not.
func TestWatchGivesUp(t *testing.T) {
	b := &backgroundErrors{log: zap.NewNop()}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				b.seen(errors.New("write 000031.sst: no space left on device"))
			}
		}
	}()
	go b.watch(ctx, cancel, 200*time.Millisecond, 20*time.Millisecond)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not given up while errors kept coming")
	}
	if c := context.Cause(ctx); !errors.Is(c, ErrBackgroundFailing) || !strings.Contains(c.Error(), "no space left") {
		t.Errorf("cause %v", c)
	}

	quiet := &backgroundErrors{log: zap.NewNop()}
	quiet.seen(errors.New("once"))
	qctx, qcancel := context.WithCancelCause(context.Background())
	defer qcancel(nil)
	done := make(chan struct{})
	go func() { defer close(done); quiet.watch(qctx, qcancel, 50*time.Millisecond, 10*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond) // long enough to give up, were it to
	if context.Cause(qctx) != nil {
		t.Errorf("given up after one error: %v", context.Cause(qctx))
	}
	qcancel(nil)
	<-done
}
