package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestAttemptKey: an apply call whose attempt Settle claimed writes
// nothing when it reaches the server after the claim (it answers
// "abandoned"), and a copy of a call that wrote (a go-redis retry, or the
// first copy run after its retry) answers "ok" and writes nothing more.
func TestAttemptKey(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := openStore(t, Config{URL: srv.URL()}, nil, prometheus.NewRegistry())
	cfg := loadgen.DefaultConfig()
	cfg.Seed = 11
	events := loadgen.Batches(loadgen.New(cfg), 1, 32)[0]
	fps, ids, _ := storage.LookupKeys(events)
	snap, err := s.Lookup(ctx, fps, ids)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	res := dedupe.NewFolder(0, storetest.NewIDs("k")).FoldEarlier(snap.Latest, nil, snap.Applied, events, at)
	call, err := s.applyArgs(storage.Batch{Incidents: res.Incidents, EventIDs: res.EventIDs, At: at})
	if err != nil {
		t.Fatal(err)
	}
	run := func(ak string) []string {
		t.Helper()
		out, _, err := s.runApply(ctx, append(append([]any(nil), call.args...), attemptTTL.Milliseconds(), s.token, ak))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	count := func() int64 {
		t.Helper()
		n, err := s.Count(ctx, storage.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	claimed := s.key("attempt", "claimed")
	if written, err := s.Settle(ctx, &lostWrite{key: claimed, err: errors.New("i/o timeout")}); err != nil || written {
		t.Fatalf("Settle of an attempt that never ran = %v, %v; want not written", written, err)
	}
	if out := run(claimed); len(out) != 1 || out[0] != "abandoned" || count() != 0 {
		t.Fatalf("the claimed attempt arriving late: %q, %d incidents; want abandoned and none", out, count())
	}

	ak := s.key("attempt", "written")
	if out := run(ak); len(out) != 1 || out[0] != "ok" {
		t.Fatalf("first copy: %q", out)
	}
	n := count()
	if out := run(ak); len(out) != 1 || out[0] != "ok" || count() != n || n != int64(res.Stats.Opened) {
		t.Fatalf("second copy: %q, %d incidents; want ok and the %d of the first copy", out, count(), res.Stats.Opened)
	}
	lost := fmt.Errorf("apply: %w", &lostWrite{key: ak, err: errors.New("i/o timeout")}) // as Ingest wraps it
	if written, err := s.Settle(ctx, lost); err != nil || !written {
		t.Fatalf("Settle of an attempt that ran = %v, %v; want written", written, err)
	}
	if written, err := s.Settle(ctx, errors.New("another error")); err != nil || written {
		t.Fatalf("Settle of an error naming no write = %v, %v; want not written", written, err)
	}
}
