package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestLostReplySettled: a server that stalls (SIGSTOP) longer than the
// read timeout, with a batch's write sent, runs the write once it runs
// again. Apply says storage.ErrOutcomeUnknown and Ingest returns the fold
// it sent; Settle cannot tell while the server stalls, then says written,
// and the batch is in the store once (go-redis's own retries of the same
// call wrote nothing more). Without Settle, a retry would find every event
// applied and count the batch as duplicates.
func TestLostReplySettled(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL(), ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	cfg := loadgen.DefaultConfig()
	cfg.Seed = 9
	batches := loadgen.Batches(loadgen.New(cfg), 2, 64)
	folder := dedupe.NewFolder(0, storetest.NewIDs("l"))
	// A first batch loads the scripts (a stalled EVALSHA of an unknown
	// script would only ever get NOSCRIPT).
	first, _, err := storage.Ingest(ctx, s, folder, batches[0], time.Now)
	if err != nil {
		t.Fatal(err)
	}
	batch := batches[1]

	thawed := false
	defer func() {
		if !thawed {
			srv.Thaw(t)
		}
	}()
	// The server stalls after the batch's read, as its write is sent.
	frozen := freezeOnApply{Store: s, freeze: func() { srv.Freeze(t) }}
	res, _, err := storage.Ingest(ctx, frozen, folder, batch, time.Now)
	if !errors.Is(err, storage.ErrOutcomeUnknown) {
		t.Fatalf("Ingest during the stall: %v, want ErrOutcomeUnknown", err)
	}
	if len(res.EventIDs) == 0 || res.Stats.Opened == 0 {
		t.Fatalf("no fold returned with the error: %+v", res.Stats)
	}
	if _, err := s.Settle(ctx, err); err == nil {
		t.Fatal("Settle answered while the server stalls")
	}
	lost := err
	srv.Thaw(t)
	thawed = true
	// It runs the write it was sent (go-redis's retries of it too).
	deadline := time.Now().Add(5 * time.Second)
	for {
		snap, err := s.Lookup(ctx, nil, res.EventIDs[:1])
		if err == nil && snap.Applied[res.EventIDs[0]] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the write sent during the stall never ran: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	written, err := s.Settle(ctx, lost)
	if err != nil || !written {
		t.Fatalf("Settle after the stall = %v, %v; want written", written, err)
	}
	snap, err := s.Lookup(ctx, nil, res.EventIDs)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range res.EventIDs {
		if !snap.Applied[id] {
			t.Fatalf("event %s not written", id)
		}
	}
	if n, err := s.Count(ctx, storage.Filter{}); err != nil || n != int64(first.Stats.Opened+res.Stats.Opened) {
		t.Fatalf("Count = %d, %v; want %d + %d: the batch once", n, err, first.Stats.Opened, res.Stats.Opened)
	}
	if written, err := s.Settle(ctx, lost); err != nil || !written {
		t.Fatalf("a second Settle = %v, %v; want written again (it is final)", written, err)
	}
}

// freezeOnApply stalls the server (freeze) just before each Apply.
type freezeOnApply struct {
	*redis.Store
	freeze func()
}

func (f freezeOnApply) Apply(ctx context.Context, b storage.Batch) error {
	f.freeze()
	return f.Store.Apply(ctx, b)
}
