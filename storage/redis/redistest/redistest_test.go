package redistest_test

import (
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as testing.T's does, without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Helper() {}

// A server asked for a port another redis-server holds does not hand the
// test that other server: it fails, saying the port was taken.
func TestStartOnTakenPort(t *testing.T) {
	first := redistest.StartStandalone(t, redistest.Options{})
	_, p, err := net.SplitHostPort(first.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	rec := &fatalRecorder{TB: t}
	done := make(chan *redistest.Server)
	go func() {
		defer close(done)
		done <- redistest.StartStandalone(rec, redistest.Options{Port: port})
	}()
	if srv := <-done; srv != nil {
		t.Fatalf("StartStandalone on the taken port %d returned a server", port)
	}
	if !strings.Contains(rec.msg, "the port was taken") {
		t.Fatalf("failure %q, want it to say the port was taken", rec.msg)
	}
	// The first server is untouched.
	if err := first.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
}
