package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// jetStreamCluster starts three clustered nats-servers with JetStream on
// loopback and returns a client URL listing them, once JetStream answers.
func jetStreamCluster(t *testing.T) string {
	t.Helper()
	servers, _ := natstest.Cluster(t)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	url := strings.Join(urls, ",")
	_, js := natstest.Connect(t, url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSetupReplicas: on a cluster, consumer.replicas going from 1 to 3
// replicates the consumers as well as the streams (found by a black-box
// run: the consumers stayed on one server, reported "unchanged", and had
// no failover).
func TestSetupReplicas(t *testing.T) {
	url := jetStreamCluster(t)
	_, js := natstest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := testConfig().Consumer
	cfg.Replicas = 1
	if _, err := consumer.Setup(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Replicas = 3
	rep, err := consumer.Setup(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("consumer %s on stream %s updated", cfg.Durable, cfg.Stream)
	if !strings.Contains(strings.Join(rep.Actions, "\n"), want) {
		t.Errorf("actions %q, want one starting %q", rep.Actions, want)
	}
	for stream, durable := range map[string]string{cfg.Stream: cfg.Durable, cfg.MaxDeliveriesStream(): cfg.Durable} {
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 {
			t.Errorf("consumer %s on %s: %d replicas, want 3", durable, stream, info.Config.Replicas)
		}
	}
	if rep, err = consumer.Setup(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Actions {
		if !strings.HasSuffix(a, "unchanged") {
			t.Errorf("a second setup: %q, want unchanged", a)
		}
	}
}
