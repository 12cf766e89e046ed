package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestSignalDuringStartUp: SIGINT or SIGTERM while the worker is still
// reaching its Redis store (sentinels that do not answer; rediss:// on a
// plain redis-server, which never answers the TLS handshake) stops it
// at once, not at the 15 s connect timeout: exit 1 ("did not start"), the
// line "stopped during start-up", the password nowhere in the output.
// The worker runs as a child process (TestMain), so that the signal is
// its own.
func TestSignalDuringStartUp(t *testing.T) {
	const pass = "start-s3cret"
	plain := redistest.StartStandalone(t, redistest.Options{RequirePass: pass})
	for _, tc := range []struct {
		name string
		url  string
		sig  syscall.Signal
	}{
		{"sentinels down, SIGINT", fmt.Sprintf("redis+sentinel://:%s@127.0.0.1:%d,127.0.0.1:%d/mymaster/0",
			pass, redistest.FreePort(t), redistest.FreePort(t)), syscall.SIGINT},
		{"rediss on a plain port, SIGTERM", "rediss://:" + pass + "@" + plain.Addr + "/0", syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := fmt.Sprintf(`
[state]
backend = "redis"
redis_url = %q
[nats]
embedded_listen = "127.0.0.1:0"
embedded_store_dir = %q
[http]
listen = %q
[log]
format = "json"
level = "info"
`, tc.url, filepath.Join(dir, "nats"), freeAddr(t))
			path := filepath.Join(dir, "incidentd.toml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "--config", path)
			cmd.Env = append(os.Environ(), daemonEnv+"=1")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var (
				mu  sync.Mutex
				out strings.Builder
			)
			natsUp := make(chan struct{})
			read := make(chan struct{})
			go func() {
				defer close(read)
				sc := bufio.NewScanner(stderr)
				sc.Buffer(nil, 1<<20)
				up := false
				for sc.Scan() {
					mu.Lock()
					out.WriteString(sc.Text() + "\n")
					mu.Unlock()
					if !up && strings.Contains(sc.Text(), `"msg":"nats connected"`) {
						up = true
						close(natsUp)
					}
				}
			}()
			done := make(chan error, 1)
			go func() { <-read; done <- cmd.Wait() }()
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-done
				}
			})
			log := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
			select {
			case <-natsUp:
			case err := <-done:
				t.Fatalf("worker exited before opening the store: %v\n%s", err, log())
			case <-time.After(30 * time.Second):
				t.Fatalf("worker did not connect to NATS:\n%s", log())
			}
			time.Sleep(time.Second) // well into the store's connect
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("worker still running 10 s after %v:\n%s", tc.sig, log())
			}
			took := time.Since(sent)
			text := log()
			t.Logf("exit after %v: %v; last line: %s", took, werr, lastLine(text))
			if code := cmd.ProcessState.ExitCode(); code != exitRuntime {
				t.Fatalf("exit code %d, want %d:\n%s", code, exitRuntime, text)
			}
			if took > 3*time.Second {
				t.Errorf("exit %v after the signal, want at once", took)
			}
			if !strings.Contains(lastLine(text), `"msg":"stopped during start-up: the worker did not start"`) {
				t.Errorf("last line %s, want the stop during start-up", lastLine(text))
			}
			if strings.Contains(text, pass) {
				t.Errorf("the password is in the output:\n%s", text)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
