package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// racePods has store b commit one event at a time, cycling through the
// identities back to back (another pod's commits, as dense as a pod
// draining a backlog makes them, each touching identities of a's batch),
// while store a ingests rounds batches of one event per identity. It
// returns how many conflicts a's Ingests met, how many events b applied to
// each identity and a's first error.
func racePods(t *testing.T, a, b storage.Store, keys []string, rounds int) (int, []int, error) {
	t.Helper()
	var stop atomic.Bool
	var wg sync.WaitGroup
	bEvents := make([]int, len(keys))
	fb := dedupe.NewFolder(0, storetest.NewIDs("b"))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			k := i % len(keys)
			ev := storetest.Trigger(fmt.Sprintf("b-%d", i), keys[k], int64(1000+i), incident.P2)
			if _, _, err := storage.Ingest(ctx, b, fb, storetest.Key(ev), func() time.Time { return storetest.Base }); err != nil {
				t.Errorf("pod b, event %d: %v", i, err)
				return
			}
			bEvents[k]++
		}
	}()
	fa := dedupe.NewFolder(0, storetest.NewIDs("a"))
	conflicts := 0
	var first error
	for r := 0; r < rounds && first == nil; r++ {
		evs := make([]incident.Event, len(keys))
		for k, key := range keys {
			evs[k] = storetest.Trigger(fmt.Sprintf("a-%d-%d", r, k), key, int64(500+r), incident.P1)
		}
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, n, err := storage.Ingest(c, a, fa, storetest.Key(evs...), func() time.Time { return storetest.Base })
		cancel()
		conflicts += n
		first = err
	}
	stop.Store(true)
	wg.Wait()
	return conflicts, bEvents, first
}

// TestWriteLeaseEndsStarvation: two pods on one Redis, one committing
// batches of 300 identities back to back, the other ingesting batches of
// the same identities. Without the write lease nearly every Apply of the
// second pod finds an incident the first one just changed, and its batch
// fails after MaxConflictRetries (the worker then reports the store failing
// and stops pulling, black-box finding); with it, the second pod takes the
// lease after LeaseAfterConflicts conflicts and every batch lands. Every
// event of both pods is counted once, and no lease is left behind.
func TestWriteLeaseEndsStarvation(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	prefix := uniquePrefix(t)
	a := open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})
	b := open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})
	keys := make([]string, 300)
	seed := make([]incident.Event, len(keys))
	for k := range keys {
		keys[k] = fmt.Sprintf("k%03d", k)
		seed[k] = storetest.Trigger("seed-"+keys[k], keys[k], 0, incident.P3)
	}
	storetest.IngestAll(t, a, dedupe.NewFolder(0, storetest.NewIDs("s")), storetest.Key(seed...), len(seed))

	const rounds = 5
	conflicts, bEvents, err := racePods(t, a, b, keys, rounds)
	if err != nil {
		t.Fatalf("pod a with the write lease: %v (after %d conflicts)", err, conflicts)
	}
	t.Logf("pod a: %d batches after %d conflicts, while pod b applied %d events", rounds, conflicts, sum(bEvents))

	fps := make([]string, len(keys))
	for k, e := range storetest.Key(seed...) {
		fps[k] = e.Fingerprint
	}
	snap, err := a.Lookup(ctx, fps, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, fp := range fps {
		in := snap.Latest[fp]
		if want := int64(1 + rounds + bEvents[k]); in == nil || in.OccurrenceCount != want {
			t.Fatalf("identity %s: %+v, want occurrence_count %d", keys[k], in, want)
		}
	}
	if n, err := srv.Client(t).Exists(ctx, prefix+":lease").Result(); err != nil || n != 0 {
		t.Fatalf("lease key left behind: exists=%d, %v", n, err)
	}
}

func sum(xs []int) (n int) {
	for _, x := range xs {
		n += x
	}
	return n
}

// TestSetStateWaitsForLease: an operator's state change while a pod holds
// the write lease and died holding it (never released: it ends with its
// TTL) waits for the lease to end instead of failing after MaxStateRetries
// quick conflicts.
func TestSetStateWaitsForLease(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	prefix := uniquePrefix(t)
	a := open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})
	b := open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})
	evs := storetest.Key(storetest.Trigger("e1", "k1", 0, incident.P2))
	storetest.IngestAll(t, a, dedupe.NewFolder(0, storetest.NewIDs("inc")), evs, 1)
	snap, err := a.Lookup(ctx, []string{evs[0].Fingerprint}, nil)
	if err != nil || snap.Latest[evs[0].Fingerprint] == nil {
		t.Fatalf("lookup: %v %+v", err, snap)
	}
	id := snap.Latest[evs[0].Fingerprint].ID
	if err := b.LeaseWrites(ctx); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := storage.SetState(c, a, id, incident.Investigating, time.Now)
	if err != nil || !ch.Changed {
		t.Fatalf("SetState under another store's lease: %+v, %v", ch, err)
	}
	got, err := a.Get(ctx, id)
	if err != nil || got.State != incident.Investigating {
		t.Fatalf("after SetState: %+v, %v", got, err)
	}
}

// TestLeaseSetByHandEndsTheWait: a lease key no pod released or let expire
// (set by hand, without a TTL) does not make Ingest or SetState (in the
// store or through the API) wait in silence: each gives up after
// storage.LeaseWaitLimit with an error wrapping ErrLeased, which the
// worker reports as a failing store; nothing is
// written meanwhile.
func TestLeaseSetByHandEndsTheWait(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	prefix := uniquePrefix(t)
	a := open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})
	evs := storetest.Key(storetest.Trigger("e1", "k1", 0, incident.P2))
	f := dedupe.NewFolder(0, storetest.NewIDs("inc"))
	storetest.IngestAll(t, a, f, evs, 1)
	snap, err := a.Lookup(ctx, []string{evs[0].Fingerprint}, nil)
	if err != nil || snap.Latest[evs[0].Fingerprint] == nil {
		t.Fatalf("lookup: %v %+v", err, snap)
	}
	id := snap.Latest[evs[0].Fingerprint].ID
	if err := srv.Client(t).Set(ctx, prefix+":lease", "by-hand", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 3*storage.LeaseWaitLimit)
	defer cancel()
	srvAPI := httptest.NewServer(api.New(a, zaptest.NewLogger(t)).EnableWrites(a, nil))
	defer srvAPI.Close()
	var wg sync.WaitGroup
	var ingestErr, setErr, apiErr error
	var ingestTook, setTook, apiTook time.Duration
	wg.Add(3)
	go func() {
		// An operator's change through a worker's API: a 409 that names
		// the lease (api.CodeWriteLeased), which the client returns as
		// ErrLeased, not "kept changing under concurrent writes".
		defer wg.Done()
		start := time.Now()
		_, _, apiErr = api.NewClient(srvAPI.URL, nil).SetState(c, id, incident.Investigating)
		apiTook = time.Since(start)
	}()
	go func() {
		defer wg.Done()
		start := time.Now()
		_, _, ingestErr = storage.Ingest(c, a, f, storetest.Key(storetest.Trigger("e2", "k1", 10, incident.P2)), time.Now)
		ingestTook = time.Since(start)
	}()
	go func() {
		defer wg.Done()
		start := time.Now()
		_, setErr = storage.SetState(c, a, id, incident.Investigating, time.Now)
		setTook = time.Since(start)
	}()
	wg.Wait()
	for _, r := range []struct {
		op   string
		err  error
		took time.Duration
	}{{"Ingest", ingestErr, ingestTook}, {"SetState", setErr, setTook}, {"API SetState", apiErr, apiTook}} {
		if !errors.Is(r.err, storage.ErrLeased) || !strings.Contains(r.err.Error(), "held the write lease for over") ||
			strings.Count(r.err.Error(), "holds the write lease") > 1 || // said once
			r.took < storage.LeaseWaitLimit || r.took > 2*storage.LeaseWaitLimit {
			t.Errorf("%s under a lease set by hand: %v after %v; want ErrLeased after %v", r.op, r.err, r.took, storage.LeaseWaitLimit)
		}
	}
	got, err := a.Get(ctx, id)
	if err != nil || got.OccurrenceCount != 1 || got.State != incident.Detected {
		t.Fatalf("written under the lease: %+v, %v", got, err)
	}
}

// leaseCounting is a real Redis store whose LeaseWrites calls and
// lease-refused Applies are counted.
type leaseCounting struct {
	*redis.Store
	leases, refused atomic.Int32
}

func (c *leaseCounting) LeaseWrites(ctx context.Context) error {
	c.leases.Add(1)
	return c.Store.LeaseWrites(ctx)
}

func (c *leaseCounting) Apply(ctx context.Context, b storage.Batch) error {
	err := c.Store.Apply(ctx, b)
	if errors.Is(err, storage.ErrLeased) {
		c.refused.Add(1)
	}
	return err
}

// TestLeaseRefusalsTakeTheLease: a batch refused by other writers' leases
// LeaseAfterConflicts times asks for the lease itself (so that three or more
// pods taking leases back to back cannot refuse it until LeaseWaitLimit),
// gets it once the holder releases, and writes; no lease is left behind.
func TestLeaseRefusalsTakeTheLease(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	prefix := uniquePrefix(t)
	a := &leaseCounting{Store: open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})}
	b := open(t, redis.Config{URL: srv.URL(), KeyPrefix: prefix})
	if err := b.LeaseWrites(ctx); err != nil {
		t.Fatal(err)
	}
	evs := storetest.Key(storetest.Trigger("e1", "k1", 0, incident.P2))
	done := make(chan error, 1)
	go func() {
		_, _, err := storage.Ingest(ctx, a, dedupe.NewFolder(0, storetest.NewIDs("inc")), evs, time.Now)
		done <- err
	}()
	deadline := time.Now().Add(storage.LeaseWaitLimit / 2)
	for a.leases.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no lease asked for after %d refusals", a.refused.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := a.refused.Load(); n != storage.LeaseAfterConflicts {
		t.Errorf("lease asked for after %d refusals, want %d", n, storage.LeaseAfterConflicts)
	}
	select {
	case err := <-done:
		t.Fatalf("Ingest returned while another store held the lease: %v", err)
	default:
	}
	if err := b.ReleaseWrites(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Ingest after the lease was released: %v", err)
		}
	case <-time.After(storage.LeaseWaitLimit):
		t.Fatal("Ingest still waiting after the lease was released")
	}
	snap, err := a.Lookup(ctx, []string{evs[0].Fingerprint}, nil)
	if err != nil || snap.Latest[evs[0].Fingerprint] == nil || snap.Latest[evs[0].Fingerprint].OccurrenceCount != 1 {
		t.Fatalf("after Ingest: %+v, %v", snap, err)
	}
	if n, err := srv.Client(t).Exists(ctx, prefix+":lease").Result(); err != nil || n != 0 {
		t.Fatalf("lease key left behind: exists=%d, %v", n, err)
	}
}
