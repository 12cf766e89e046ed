package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "incidentd ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	body := "[state]\nbackend = \"nosuch\"\n[consumer]\nbatch_size = 0\n[log]\nlevel = \"loud\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"--config", path}, &out, &errb)
	if code != exitConfig {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitConfig, errb.String())
	}
	for _, key := range []string{"state.backend", "consumer.batch_size", "log.level"} {
		if !strings.Contains(errb.String(), key) {
			t.Errorf("stderr does not name %s:\n%s", key, errb.String())
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d", code)
	}
}

func TestUnknownFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--nope"}, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d", code)
	}
}

// TestSignalDrains runs the daemon in-process on a temporary directory,
// waits until it is ready, sends SIGTERM and expects a clean exit.
func TestSignalDrains(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
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
`, filepath.Join(dir, "pebble"), filepath.Join(dir, "nats"), addr)
	path := filepath.Join(dir, "incidentd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() { code <- run([]string{"--config", path}, &out, &errb) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != exitOK {
			t.Fatalf("exit %d after SIGTERM; stderr %s", c, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(dir, "pebble")); err != nil {
		t.Fatalf("pebble directory: %v", err)
	}
}
