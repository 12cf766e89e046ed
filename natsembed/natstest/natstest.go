// Package natstest starts real nats-server instances for tests that need a
// server natsembed does not configure (authentication, say): in-process, on
// a free loopback port, with JetStream in the test's temporary directory.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start runs a nats-server with opts on a free loopback port, with
// JetStream under t.TempDir(), stops it when the test ends and returns its
// client URL (without credentials).
func Start(t testing.TB, opts server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs = "127.0.0.1", -1, true, t.TempDir(), true
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s.ClientURL()
}

// Connect connects to url with opts, closes the connection when the test
// ends and returns it with its JetStream context.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// freePorts returns n loopback ports the kernel found free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// StartNode starts a server on a copy of o (the server keeps what it is
// given), stops it when the test ends, and waits until it accepts
// connections: a cluster node, or one started again on Cluster's options.
func StartNode(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o.Clone())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("%s not ready", o.ServerName)
	}
	return s
}

// Cluster starts three nats-servers with JetStream, routed to each other
// on loopback ports, and waits until the cluster places a stream on all
// three (a meta leader alone is not enough: until it has heard from each
// peer, it refuses three replicas with "no suitable peers for placement").
// It returns the servers and their options, to start one again with (same
// ports, same store).
func Cluster(t testing.TB) ([]*server.Server, []*server.Options) {
	t.Helper()
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	servers, opts := make([]*server.Server, 3), make([]*server.Options, 3)
	for i := range servers {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: ports[i], NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: ports[3+i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		servers[i], opts[i] = StartNode(t, o), o
	}
	waitPlacement(t, servers)
	return servers, opts
}

// waitPlacement creates and deletes a three-replica stream until the
// cluster takes it, for at most 30 s.
func waitPlacement(t testing.TB, servers []*server.Server) {
	t.Helper()
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	_, js := Connect(t, strings.Join(urls, ","))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NATSTEST_READY", Subjects: []string{"natstest.ready"},
			Replicas: 3, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(ctx, "NATSTEST_READY")
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster does not place three replicas after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
