package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-im/incidentd/config"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "incidentd ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
}

// TestInvalidConfigListsEveryProblem: an invalid configuration exits 2 and
// prints every problem, naming the TOML key or the variable that set it;
// values of the wrong type do not hide each other or the invalid values.
func TestInvalidConfigListsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		body string
		env  map[string]string
		want []string
	}{
		{
			name: "invalid values",
			body: "[state]\nbackend = \"nosuch\"\n[consumer]\nbatch_size = 0\n[log]\nlevel = \"loud\"\n",
			want: []string{"(3 problems)", "state.backend", "consumer.batch_size", "log.level"},
		},
		{
			name: "four bad durations",
			body: "[consumer]\nack_wait = \"banana\"\nbatch_wait = \"soon\"\nmax_age = 12\n[dedupe]\nwindow = \"forever\"\n",
			want: []string{"(4 problems)", `consumer.ack_wait: "banana" is not a duration`, `consumer.batch_wait: "soon" is not a duration`,
				"consumer.max_age: want a duration string", `dedupe.window: "forever" is not a duration`},
		},
		{
			name: "wrong types beside an invalid value",
			body: "[state]\npool_size = \"many\"\n[consumer]\nbatch_size = \"big\"\n[log]\nlevel = \"loud\"\n",
			want: []string{"(3 problems)", `state.pool_size: want an integer, got the string "many"`,
				`consumer.batch_size: want an integer, got the string "big"`, "log.level: must be one of"},
		},
		{
			name: "environment overrides",
			env:  map[string]string{"LOG_LEVEL": "loud", "STATE_BACKEND": "mongo"},
			want: []string{"(2 problems)", `STATE_BACKEND (state.backend): unknown backend "mongo"`, "LOG_LEVEL (log.level): must be one of"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var args []string
			if tt.body != "" {
				path := filepath.Join(t.TempDir(), "bad.toml")
				if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--config", path}
			}
			var out, errb bytes.Buffer
			code := run(args, &out, &errb)
			if code != exitConfig {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitConfig, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d", code)
	}
}

// TestEmptyConfigPath: `--config "$CFG"` with CFG unset is a configuration
// error, not a run on the defaults.
func TestEmptyConfigPath(t *testing.T) {
	for _, args := range [][]string{{"--config", ""}, {"--config="}, {"--config", " ", "--check-config"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitConfig || !strings.Contains(errb.String(), "an empty path") || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

func TestPositionalArgumentRefused(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"incidentd.toml"}, &out, &errb); code != exitConfig || !strings.Contains(errb.String(), "--config") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	// With the flags, as for an unknown flag.
	if !strings.Contains(errb.String(), "-check-config") || out.Len() != 0 {
		t.Errorf("stderr does not list the flags (or stdout is not empty): %q", errb.String())
	}
}

// TestUsage: -h and --help print the usage on stdout and succeed; a usage
// error prints it on stderr and exits 2.
func TestUsage(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		usageOnOut bool
	}{
		{[]string{"--help"}, exitOK, true},
		{[]string{"-h"}, exitOK, true},
		{[]string{"--nope"}, exitConfig, false},
		{[]string{"--config"}, exitConfig, false},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		usage, other := out.String(), errb.String()
		if !c.usageOnOut {
			usage, other = other, usage
		}
		if code != c.code || !strings.Contains(usage, "-config") || other != "" {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", c.args, code, c.code, out.String(), errb.String())
		}
	}
}

// workerConfig writes a config for a daemon on loopback ports the OS picks,
// Pebble under dir/pebble (or pebblePath), HTTP on httpAddr.
func workerConfig(t *testing.T, dir, pebblePath, httpAddr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[state]
backend = "pebble"
path = %q
[nats]
embedded_listen = "127.0.0.1:0"
embedded_store_dir = %q
[http]
listen = %q
[log]
format = "json"
level = "warn"
`, pebblePath, filepath.Join(dir, "nats"), httpAddr)
	path := filepath.Join(dir, "incidentd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStartFailuresExitOne: a runtime failure at start (the HTTP port taken,
// the store locked by another process) exits 1 after releasing what was
// already started; it once panicked on the way out.
func TestStartFailuresExitOne(t *testing.T) {
	t.Run("http port in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		dir := t.TempDir()
		path := workerConfig(t, dir, filepath.Join(dir, "pebble"), busy.Addr().String())
		var out, errb bytes.Buffer
		if code := run([]string{"--config", path}, &out, &errb); code != exitRuntime {
			t.Fatalf("exit %d, want %d; stderr %q", code, exitRuntime, errb.String())
		}
		// Everything started before the failure was released: the same store
		// and a free port start fine now.
		busy.Close()
		checkStarts(t, workerConfig(t, dir, filepath.Join(dir, "pebble"), freeAddr(t)))
	})
	t.Run("store locked", func(t *testing.T) {
		dir := t.TempDir()
		holder := workerConfig(t, dir, filepath.Join(dir, "pebble"), freeAddr(t))
		code := make(chan int, 1)
		var out, errb bytes.Buffer
		ctxStop := startDaemon(t, holder, code, &out, &errb)
		second := t.TempDir()
		path := workerConfig(t, second, filepath.Join(dir, "pebble"), freeAddr(t))
		var out2, errb2 bytes.Buffer
		if c := run([]string{"--config", path}, &out2, &errb2); c != exitRuntime {
			t.Fatalf("second worker on a locked store: exit %d, want %d; stderr %q", c, exitRuntime, errb2.String())
		}
		ctxStop()
		if c := <-code; c != exitOK {
			t.Fatalf("first worker: exit %d; stderr %s", c, errb.String())
		}
	})
}

// TestSignalDrains runs the daemon in-process on a temporary directory,
// waits until it is ready, sends SIGTERM and expects a clean exit.
func TestSignalDrains(t *testing.T) {
	dir := t.TempDir()
	checkStarts(t, workerConfig(t, dir, filepath.Join(dir, "pebble"), freeAddr(t)))
	if _, err := os.Stat(filepath.Join(dir, "pebble")); err != nil {
		t.Fatalf("pebble directory: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon runs the daemon on config path until it is ready and returns
// a function that sends it SIGTERM; its exit code arrives on code.
func startDaemon(t *testing.T, path string, code chan int, out, errb *bytes.Buffer) func() {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	addr := ""
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "listen = "); ok {
			addr = strings.Trim(v, `"`)
		}
	}
	go func() { code <- run([]string{"--config", path}, out, errb) }()
	waitReady(t, addr)
	return func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
}

func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkStarts runs the daemon on path until ready, then stops it cleanly.
func checkStarts(t *testing.T, path string) {
	t.Helper()
	code := make(chan int, 1)
	var out, errb bytes.Buffer
	stop := startDaemon(t, path, code, &out, &errb)
	stop()
	if c := <-code; c != exitOK {
		t.Fatalf("exit %d; stderr %s", c, errb.String())
	}
}

// TestCheckConfig: --check-config prints the configuration in force (file,
// environment, defaults) with secrets masked, as TOML that loads back to the
// same configuration, and exits 0; an invalid one exits 2 as a start would.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.toml")
	body := "[consumer]\nbatch_size = 256\nack_wait = \"45s\"\n[dedupe.source_fields]\nllm-gateway = [\"source\", \"labels.model\"]\n[nats]\nurl = \"nats://alice:natspw@127.0.0.1:4222\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STATE_BACKEND", "redis")
	t.Setenv("STATE_REDIS_URL", "redis://bob:redispw@127.0.0.1:6379/2")
	var out, errb bytes.Buffer
	if code := run([]string{"--config", path, "--check-config"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	for _, secret := range []string{"natspw", "redispw"} {
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Errorf("output shows the secret %q:\n%s", secret, out.String())
		}
	}
	for _, want := range []string{"configuration is valid", "batch_size = 256", "ack_wait = '45s'",
		"redis_url = 'redis://bob:xxxxx@127.0.0.1:6379/2'", "backend = 'redis'", "llm-gateway = ['source', 'labels.model']"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	printed := filepath.Join(dir, "printed.toml")
	if err := os.WriteFile(printed, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	back, err := config.Load(printed, noEnv)
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out.String())
	}
	orig, err := config.Load(path, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := orig.Redacted()
	back.Warnings, want.Warnings = nil, nil
	back.BackendDefaulted, want.BackendDefaulted = false, false
	back.NATS.URLFrom = want.NATS.URLFrom // where the URL came from: the file read
	if !reflect.DeepEqual(back, want) {
		t.Errorf("loaded back:\n%+v\nwant:\n%+v", back, want)
	}

	t.Setenv("STATE_BACKEND", "mongo")
	out.Reset()
	errb.Reset()
	if code := run([]string{"--check-config"}, &out, &errb); code != exitConfig || out.Len() != 0 ||
		!strings.Contains(errb.String(), `STATE_BACKEND (state.backend): unknown backend "mongo"`) {
		t.Fatalf("invalid: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
