package redis_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// stream writes batches of realistic events through storage.Ingest until
// stopped, retrying a failed batch (as the worker would after a
// redelivery), and remembers the events of every batch it saw committed.
type stream struct {
	s         storage.Store
	committed atomic.Int64
	failures  atomic.Int64
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	events    []dedupe.Keyed // of committed batches
}

func startStream(t *testing.T, s storage.Store) *stream {
	st := &stream{s: s, stop: make(chan struct{}), done: make(chan struct{})}
	cfg := loadgen.DefaultConfig()
	cfg.IDPrefix = "fo"
	g := loadgen.New(cfg)
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := dedupe.NewFolder(0, storetest.NewIDs("fo"))
	go func() {
		defer close(st.done)
		for {
			batch := make([]dedupe.Keyed, 64)
			for i := range batch {
				ev := g.Next()
				batch[i] = dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)}
			}
			for {
				select {
				case <-st.stop:
					return
				default:
				}
				if _, _, err := storage.Ingest(ctx, s, f, batch, time.Now); err != nil {
					st.failures.Add(1)
					t.Logf("batch failed (will retry): %v", err)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				st.mu.Lock()
				st.events = append(st.events, batch...)
				st.mu.Unlock()
				st.committed.Add(1)
				break
			}
		}
	}()
	return st
}

// waitBatches polls until n more batches than now were committed.
func (st *stream) waitBatches(t *testing.T, n int64) {
	want := st.committed.Load() + n
	redistest.Eventually(t, 60*time.Second, "batches committed", func() error {
		if st.committed.Load() < want {
			return errNotYet
		}
		return nil
	})
}

type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet = notYet{}

// verify stops the stream and checks that every committed batch is in the
// store: each event id marked applied, and the incidents exactly the fold
// of all committed events.
func (st *stream) verify(t *testing.T, s storage.Store) {
	close(st.stop)
	<-st.done
	st.mu.Lock()
	events := st.events
	st.mu.Unlock()
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].Event.ID
	}
	snap, err := s.Lookup(ctx, nil, ids)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range ids {
		if !snap.Applied[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d committed events lost in the failover", lost, len(ids))
	}
	storetest.RequireFolded(t, storetest.FoldAll(events), storetest.ListAll(t, s))
	t.Logf("%d batches committed, %d attempts failed during the failover", st.committed.Load(), st.failures.Load())
}

func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes ~20s; skipped with -short")
	}
	sn := redistest.StartSentinel(t)
	s := open(t, redis.Config{URL: sn.URL(), ReadTimeout: time.Second, WriteTimeout: time.Second, WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond})
	st := startStream(t, s)
	st.waitBatches(t, 20)
	old := sn.MasterAddr(t)
	now := sn.Failover(t)
	t.Logf("master moved from %s to %s", old, now)
	st.waitBatches(t, 20)
	st.verify(t, s)
}

func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes ~10s; skipped with -short")
	}
	c := redistest.StartCluster(t)
	cfg := redis.Config{Cluster: true, ClusterNodes: c.Nodes(), KeyPrefix: "fo", ReadTimeout: time.Second, WriteTimeout: time.Second, WaitReplicas: 1, WaitTimeout: 300 * time.Millisecond}
	s := open(t, cfg)
	st := startStream(t, s)
	st.waitBatches(t, 20)
	old, now := c.Failover(t, "{fo}:incidents")
	t.Logf("slot master moved from %s to %s", old, now)
	st.waitBatches(t, 20)
	st.verify(t, s)
}
