package natsembed_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/natsembed"
)

func TestServer(t *testing.T) {
	s, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
	nc.Close()
	s.Shutdown()
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("still accepting connections after Shutdown")
	}
}

func TestBadListen(t *testing.T) {
	for _, l := range []string{"nohostport", "127.0.0.1:http"} {
		if _, err := natsembed.New(natsembed.Config{Listen: l, StoreDir: t.TempDir()}, zaptest.NewLogger(t)); err == nil {
			t.Errorf("listen %q accepted", l)
		}
	}
}

// TestBusyPortFailsAtOnce: a listen address in use is an error at once,
// naming the cause, not after the whole start timeout.
func TestBusyPortFailsAtOnce(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	start := time.Now()
	_, err = natsembed.New(natsembed.Config{Listen: busy.Addr().String(), StoreDir: t.TempDir(), StartTimeout: 20 * time.Second}, zaptest.NewLogger(t))
	if !errors.Is(err, natsembed.ErrNotReady) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want ErrNotReady saying the address is in use", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v to fail, want well under the 20 s start timeout", took)
	}
}

// TestStoreDirLocked: a second embedded server on the same store directory
// fails to start, naming it, instead of sharing (and corrupting) its
// streams; once the first shuts down, the directory is free again.
func TestStoreDirLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: dir}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: dir}, zaptest.NewLogger(t))
	if !errors.Is(err, natsembed.ErrStoreDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second server on %s: %v, want ErrStoreDirLocked naming it", dir, err)
	}
	first.Shutdown()
	again, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: dir}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("after the first shut down: %v", err)
	}
	again.Shutdown()
}

// TestSyncPolicy: nats.embedded_sync_interval reaches the server's
// JetStream, as the server applies it.
func TestSyncPolicy(t *testing.T) {
	for _, tc := range []struct {
		cfg  natsembed.Config
		want string
	}{
		{natsembed.Config{}, "2m0s"},
		{natsembed.Config{SyncInterval: 5 * time.Second}, "5s"},
		{natsembed.Config{SyncAlways: true}, "always"},
	} {
		tc.cfg.Listen, tc.cfg.StoreDir = "127.0.0.1:0", t.TempDir()
		s, err := natsembed.New(tc.cfg, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.SyncPolicy(); got != tc.want {
			t.Errorf("%+v: sync %q, want %q", tc.cfg, got, tc.want)
		}
		s.Shutdown()
	}
}
