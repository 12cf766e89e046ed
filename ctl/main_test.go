package ctl_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// workerEnv makes the test binary run a worker instead of the tests: the
// value is its config file, and it writes its API URL to that path +
// ".url" once it listens. A worker in a process of its own has a CPU time
// of its own to measure.
const workerEnv = "INCIDENTCTL_TEST_RUN_WORKER"

func TestMain(m *testing.M) {
	if path := os.Getenv(workerEnv); path != "" {
		os.Exit(runWorker(path))
	}
	os.Exit(m.Run())
}

func runWorker(path string) int {
	cfg, err := config.Load(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, zap.NewNop(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(path+".tmp", []byte(a.HTTPURL()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(path+".tmp", path+".url"); err != nil { // whole, or not at all
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startWorkerProcess runs a worker (memory store) on natsURL in a child
// process and returns its API URL once it answers /readyz.
func startWorkerProcess(t *testing.T, natsURL string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "worker.toml")
	writeFile(t, path, fmt.Sprintf("[state]\nbackend = \"memory\"\n[nats]\nurl = %q\n[http]\nlisten = \"127.0.0.1:0\"\n", natsURL))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), workerEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("worker did not stop on SIGTERM")
		}
	})
	var url string
	waitFor(t, "the worker process to be ready", func() bool {
		if url == "" {
			b, err := os.ReadFile(path + ".url")
			if err != nil || len(b) == 0 {
				return false
			}
			url = string(b)
		}
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}
