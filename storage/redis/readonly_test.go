package redis_test

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestReadOnlyUserOpensAnOldLayout: a user allowed only to read (what an
// operator gives incidentctl get, list or verify) opens a keyspace still
// waiting for the layout upgrade: the upgrade is skipped with a warning,
// not an error, and queries answer.
func TestReadOnlyUserOpensAnOldLayout(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{Extra: []string{
		"user reader on >r3ad ~* &* +@read +@connection +info +evalsha +eval +script",
	}})
	ctx := context.Background()
	w, err := redis.New(redis.Config{URL: srv.URL()}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Put(t, w, storetest.SparseIncident("inc-r", "v1:r"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The layout marker gone: as written by a build before the upgrade.
	if err := srv.Client(t).Del(ctx, "llm-im:schema").Err(); err != nil {
		t.Fatal(err)
	}
	r, err := redis.New(redis.Config{URL: "redis://reader:r3ad@" + srv.Addr + "/0"}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatalf("a read-only user cannot open the store: %v", err)
	}
	defer r.Close()
	if n, err := r.Count(ctx, storage.Filter{}); err != nil || n != 1 {
		t.Fatalf("count as the reader: %d, %v", n, err)
	}
	if err := srv.Client(t).Get(ctx, "llm-im:schema").Err(); err == nil {
		t.Fatal("the reader wrote the layout marker")
	}
}
