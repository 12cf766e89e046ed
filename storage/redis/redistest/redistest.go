// Package redistest starts real redis-server and redis-sentinel processes
// for tests of the Redis storage backend and of anything built on it (the
// worker's end-to-end test): standalone servers (with a password, an ACL
// user, TLS, AOF), a Sentinel deployment and a six-node Cluster, each on
// free loopback ports in the test's temporary directory, stopped in
// t.Cleanup.
//
// When redis-server is not installed the tests are skipped, except under
// CI=true, where that fails them.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 20 * time.Second

// Require skips the test when the binary is missing, or fails it under
// CI=true.
func Require(t testing.TB, binary string) string {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not installed (apt-get install redis-server redis-sentinel redis-tools): %v", binary, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var portMu sync.Mutex
var portsTaken = map[int]bool{}

// FreePort returns a loopback port nothing listens on, and whose cluster
// bus port (port+10000) is free too, never the same twice in one process.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if portsTaken[p] || p+10000 > 65535 {
			continue
		}
		if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			l2.Close()
			portsTaken[p] = true
			return p
		}
	}
	t.Fatal("no free port pair found")
	return 0
}

// process is one running redis-server or redis-sentinel.
type process struct {
	cmd  *exec.Cmd
	dir  string
	port int
	out  *SyncBuffer
}

// output returns what the process printed so far.
func (p *process) output() string { return p.out.String() }

// SyncBuffer is an output sink that a process or goroutines may write
// while the test reads it. The buffer is a named field, not embedded: an
// embedded bytes.Buffer would lend its unlocked ReadFrom to io.Copy, which
// os/exec uses to copy a process's output (a data race the race detector
// found).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends to the buffer under the lock.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs binary with the config lines written to dir/redis.conf and
// stops it in t.Cleanup.
func start(t testing.TB, binary, dir string, port int, conf []string) *process {
	t.Helper()
	path := Require(t, binary)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"bind 127.0.0.1", "port " + strconv.Itoa(port), "dir " + dir, "daemonize no",
		"protected-mode no", "logfile \"\"", "loglevel warning",
	}
	if binary == "redis-server" {
		base = append(base, "save \"\"")
	}
	file := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(file, []byte(strings.Join(append(base, conf...), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &SyncBuffer{}
	p := &process{dir: dir, port: port, out: out}
	p.cmd = exec.Command(path, file)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s :%d output:\n%s", binary, port, out.String())
		}
	})
	return p
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (p *process) Kill() { _ = p.cmd.Process.Kill() }

// waitPing polls until the server p started answers PING through opt. A
// server that answers with another process id (INFO server) is another
// redis-server holding the port, which p could not bind: the test fails at
// once rather than sharing a server it does not own.
func waitPing(t testing.TB, opt *goredis.Options, p *process) {
	t.Helper()
	c := goredis.NewClient(opt)
	defer c.Close()
	Eventually(t, startTimeout, "redis at "+opt.Addr+" answers PING", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			return err
		}
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		if pid := infoField(info, "process_id"); pid != strconv.Itoa(p.cmd.Process.Pid) {
			t.Fatalf("%s is answered by another process (pid %s), not the one started (pid %d): the port was taken\n%s",
				opt.Addr, pid, p.cmd.Process.Pid, p.output())
		}
		return nil
	})
}

// infoField returns the value of field in an INFO reply ("" when absent).
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// Eventually polls cond (with a short, growing pause) until it returns nil,
// failing the test with the last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(pause)
		pause = min(pause*2, 200*time.Millisecond)
	}
}
