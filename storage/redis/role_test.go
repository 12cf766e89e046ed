package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestPingOnReplica: a standalone store's Ping (the worker's readiness
// probe) fails with storage.ErrReadOnly, naming the master, once its
// server is a replica, and passes again when it is a master; reads still
// work on the replica, as incidentctl's read-only queries need.
func TestPingOnReplica(t *testing.T) {
	master := redistest.StartStandalone(t, redistest.Options{})
	srv := redistest.StartStandalone(t, redistest.Options{})
	s, err := redis.New(redis.Config{URL: srv.URL()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping on a master: %v", err)
	}
	cli := srv.Client(t)
	host, port, _ := strings.Cut(master.Addr, ":")
	if err := cli.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	err = s.Ping(ctx)
	t.Log(err)
	if !errors.Is(err, storage.ErrReadOnly) || !strings.Contains(err.Error(), srv.Addr+" is a read-only replica of "+master.Addr) {
		t.Errorf("ping on a replica: %v, want storage.ErrReadOnly naming both servers", err)
	}
	if _, err := s.Count(ctx, storage.Filter{}); err != nil {
		t.Errorf("count on the replica: %v", err)
	}
	// A read-only store opened on the replica opens and reads.
	ro, err := redis.New(redis.Config{URL: srv.URL()}, nil, nil)
	if err != nil {
		t.Fatalf("opening on the replica: %v", err)
	}
	if _, err := ro.Count(ctx, storage.Filter{}); err != nil {
		t.Errorf("count through a store opened on the replica: %v", err)
	}
	_ = ro.Close()

	if err := cli.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping once a master again: %v", err)
	}
}
