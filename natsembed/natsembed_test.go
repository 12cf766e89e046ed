package natsembed_test

import (
	"context"
	"testing"

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
