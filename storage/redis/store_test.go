package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

var ctx = context.Background()

// dump is every key of a keyspace with its DUMP payload.
func dump(t *testing.T, c goredis.UniversalClient, pattern string) map[string]string {
	t.Helper()
	keys, err := c.Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = c.Dump(ctx, k).Val()
	}
	return out
}

func sameDump(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: key %s changed", what, k)
		}
	}
}

// TestApplyTwiceChangesNothing is what a go-redis retry of an Apply the
// server already ran looks like: the second run is a conflict and writes
// nothing, and Ingest of the same events afterwards folds to all
// duplicates and writes nothing either.
func TestApplyTwiceChangesNothing(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL()})
	c := srv.Client(t)
	events := storetest.Key(
		storetest.Trigger("e1", "k1", 1, incident.P2), storetest.Trigger("e2", "k1", 2, incident.P0),
		storetest.Trigger("e3", "k2", 3, incident.P3), storetest.Control("e4", "k2", incident.Resolve, 4),
	)
	f := dedupe.NewFolder(0, storetest.NewIDs("inc"))
	snap, err := s.Lookup(ctx, []string{events[0].Fingerprint, events[2].Fingerprint}, []string{"e1", "e2", "e3", "e4"})
	if err != nil {
		t.Fatal(err)
	}
	res := f.Fold(snap.Latest, snap.Applied, events, storetest.Base)
	b := storage.Batch{Incidents: res.Incidents, EventIDs: res.EventIDs, At: storetest.Base}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatalf("first apply: %v", err)
	}
	before := dump(t, c, "llm-im:*")
	if err := s.Apply(ctx, b); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second apply = %v, want ErrConflict", err)
	}
	sameDump(t, "after the repeated apply", before, dump(t, c, "llm-im:*"))
	again, attempts, err := storage.Ingest(ctx, s, f, events, func() time.Time { return storetest.Base })
	if err != nil || attempts != 0 || len(again.EventIDs) != 0 || again.Stats.Duplicates != len(events) {
		t.Fatalf("ingest again: %v, %d attempts, %d applied, stats %+v", err, attempts, len(again.EventIDs), again.Stats)
	}
	sameDump(t, "after ingesting again", before, dump(t, c, "llm-im:*"))
}

// TestKeyLayout checks the keys a redis-cli user relies on, with the
// default prefix, through an update that moves state and severity.
func TestKeyLayout(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL()})
	c := srv.Client(t)
	a := storetest.SparseIncident("inc-a", "v1:a")
	a.Severity, a.State, a.Source, a.Type = incident.P1, incident.Detected, "llm-gateway", incident.Performance
	storetest.Put(t, s, a)
	if got := c.SMembers(ctx, "llm-im:state:Active").Val(); !slices.Equal(got, []string{"inc-a"}) {
		t.Errorf("SMEMBERS llm-im:state:Active = %v before the resolve, want [inc-a]", got)
	}
	a2 := storetest.Update(a, func(in *incident.Incident) { in.Severity, in.State = incident.P0, incident.Resolved })
	storetest.Put(t, s, a2)
	members := map[string][]string{
		"llm-im:incidents": {"inc-a"}, "llm-im:severity:P0": {"inc-a"}, "llm-im:severity:P1": nil,
		"llm-im:state:Resolved": {"inc-a"}, "llm-im:state:Detected": nil, "llm-im:source:llm-gateway": {"inc-a"},
		"llm-im:type:Performance": {"inc-a"}, "llm-im:fingerprint:v1:a": {"inc-a"}, "llm-im:state:Active": nil,
	}
	for k, want := range members {
		got := c.SMembers(ctx, k).Val()
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("SMEMBERS %s = %v, want %v", k, got, want)
		}
	}
	if n := c.ZCard(ctx, "llm-im:z:incidents").Val(); n != 1 {
		t.Errorf("ZCARD llm-im:z:incidents = %d, want 1", n)
	}
	if keys := c.Keys(ctx, "llm-im:z:*").Val(); len(keys) != 1 {
		t.Errorf("sorted sets %v, want only llm-im:z:incidents", keys)
	}
	if got := c.ZScore(ctx, "llm-im:z:incidents", "inc-a").Val(); got != float64(a2.LastSeen.UnixMicro()) {
		t.Errorf("score = %v, want last_seen in µs %d", got, a2.LastSeen.UnixMicro())
	}
	if got := c.Get(ctx, "llm-im:identity:v1:a").Val(); got != "inc-a" {
		t.Errorf("identity pointer = %q", got)
	}
	if got := c.Get(ctx, "llm-im:incident:inc-a").Val(); got == "" || got[0] != '{' {
		t.Errorf("record = %q", got)
	}
	now := c.Time(ctx).Val()
	if until := time.UnixMilli(int64(c.ZScore(ctx, "llm-im:applied", "put:inc-a:v2").Val())); !until.After(now) || until.After(now.Add(24*time.Hour)) {
		t.Errorf("marker expires at %v, want within the 24h retention from %v", until, now)
	}
	if keys := c.Keys(ctx, "llm-im:applied*").Val(); len(keys) != 1 {
		t.Errorf("marker keys %v, want only the sorted set llm-im:applied", keys)
	}
	if keys := c.Keys(ctx, "llm-im:tmp*").Val(); len(keys) != 0 {
		t.Errorf("temporary keys left: %v", keys)
	}
	if got := c.Get(ctx, "llm-im:schema").Val(); got != "2" {
		t.Errorf("layout marker llm-im:schema = %q, want 2", got)
	}
}

// raceEvents are 50 identities with 6 triggers each, spread in time.
func raceEvents() []dedupe.Keyed {
	var evs []incident.Event
	for k := range 50 {
		for j := range 6 {
			evs = append(evs, storetest.Trigger(fmt.Sprintf("r-%02d-%d", k, j), fmt.Sprintf("id-%02d", k),
				int64(j*10_000+k), incident.Severities[(k+j)%5]))
		}
	}
	return storetest.Key(evs...)
}

// race has 4 stores (4 clients, as 4 pods would be) ingest overlapping,
// repeated shuffles of the same events at once, then checks exactly one
// open incident per identity with exact counts, in the records and in the
// plain sets.
func race(t *testing.T, cfg redis.Config, c goredis.UniversalClient) {
	cfg.KeyPrefix = uniquePrefix(t)
	events := raceEvents()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		s := open(t, cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			f := dedupe.NewFolder(0, storetest.NewIDs(fmt.Sprintf("w%d", w)))
			for range 2 {
				mine := slices.Clone(events)
				rng.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
				for lo := 0; lo < len(mine); lo += 40 + w*7 {
					batch := mine[lo:min(lo+40+w*7, len(mine))]
					if err := ingestUntilApplied(s, f, batch); err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := open(t, cfg)
	got := storetest.ListAll(t, s)
	if len(got) != 50 {
		t.Fatalf("%d incidents for 50 identities", len(got))
	}
	for _, in := range got {
		if !in.Active() || in.OccurrenceCount != 6 || in.Version < 1 {
			t.Errorf("%s: state %s, count %d", in.DedupKey, in.State, in.OccurrenceCount)
		}
	}
	storetest.RequireFolded(t, storetest.FoldAll(events), got)
	p := cfg.KeyPrefix
	if cfg.Cluster {
		p = "{" + p + "}"
	}
	if n := c.SCard(ctx, p+":incidents").Val(); n != 50 {
		t.Errorf("SCARD incidents = %d", n)
	}
	if n := c.SCard(ctx, p+":state:Detected").Val(); n != 50 {
		t.Errorf("SCARD state:Detected = %d", n)
	}
	requireActiveSet(t, c, p, got)
	var sev int64
	for _, v := range incident.Severities {
		sev += c.SCard(ctx, p+":severity:"+v.String()).Val()
	}
	if sev != 50 {
		t.Errorf("severity sets hold %d ids, want 50", sev)
	}
}

// ingestUntilApplied is storage.Ingest retried on ErrConflict, as the
// worker does through redeliveries.
func ingestUntilApplied(s storage.Store, f *dedupe.Folder, batch []dedupe.Keyed) error {
	for range 100 {
		_, _, err := storage.Ingest(ctx, s, f, batch, func() time.Time { return storetest.Base })
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return errors.New("still conflicting after 100 tries")
}

func TestConcurrentPodsStandalone(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	race(t, redis.Config{URL: srv.URL()}, srv.Client(t))
}

func TestConcurrentPodsCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	race(t, redis.Config{Cluster: true, ClusterNodes: cl.Nodes()}, c)
}

// The race on the commands of Redis 5.0 (see TestConformanceRedis50Standalone).
func TestConcurrentPodsRedis50Standalone(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{Extra: redistest.Redis50Commands})
	race(t, redis.AsIfVersion(redis.Config{URL: srv.URL()}, "5.0.0"), srv.Client(t))
}

func TestConcurrentPodsRedis50Cluster(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.Redis50Commands...)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	race(t, redis.AsIfVersion(redis.Config{Cluster: true, ClusterNodes: cl.Nodes()}, "5.0.0"), c)
}

// TestIndexesWithAwkwardValues: values with quotes, backslashes, colons and
// braces, and titles that look like JSON fields, keep the index sets exact
// through updates.
func TestIndexesWithAwkwardValues(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL(), KeyPrefix: "awk"})
	c := srv.Client(t)
	a := storetest.SparseIncident("inc-1", `v1:{fp}"x\y`)
	a.Source, a.Title = `src "quoted" \ back:slash {tag}`, `"state":"Closed","severity":"P4","version":9}`
	a.State, a.Severity = incident.Detected, incident.P1
	a.Description = `"source":"evil"`
	a.Labels = map[string]string{"state": "Closed", "source": "label"}
	storetest.Put(t, s, a)
	a2 := storetest.Update(a, func(in *incident.Incident) { in.State, in.Severity = incident.Resolved, incident.P4 })
	storetest.Put(t, s, a2)
	a3 := storetest.Update(a2, func(in *incident.Incident) { in.Source = "plain" })
	storetest.Put(t, s, a3)
	want := map[string]int64{
		"awk:source:" + a.Source: 0, "awk:source:plain": 1, "awk:state:Resolved": 1, "awk:state:" + a.State.String(): 0,
		"awk:severity:P4": 1, "awk:severity:" + a.Severity.String(): 0, "awk:fingerprint:" + a.Fingerprint: 1,
	}
	for k, n := range want {
		if got := c.SCard(ctx, k).Val(); got != n {
			t.Errorf("SCARD %s = %d, want %d", k, got, n)
		}
	}
	// The fast path (plain indexed values) with field-like text elsewhere.
	b := storetest.SparseIncident("inc-2", "v1:plain")
	b.State, b.Severity, b.Source = incident.Detected, incident.P1, "plain"
	b.Title, b.Description, b.Labels = a.Title, a.Description, a.Labels
	b.DedupKey = `x","source":"evil","type":"Security","severity":"P4","peak_severity":"P4","state":"Closed",`
	storetest.Put(t, s, b)
	b2 := storetest.Update(b, func(in *incident.Incident) { in.State, in.Severity = incident.Triaged, incident.P0 })
	storetest.Put(t, s, b2)
	for k, n := range map[string]int64{"awk:state:Detected": 0, "awk:state:Triaged": 1, "awk:severity:P1": 0, "awk:severity:P0": 1, "awk:state:Closed": 0} {
		if got := c.SCard(ctx, k).Val(); got != n {
			t.Errorf("SCARD %s = %d, want %d", k, got, n)
		}
	}
	storetest.CheckFilters(t, s, []*incident.Incident{a3, b2})
}

// TestMarkersExpire: a marker counts for AppliedRetention by the server's
// clock, then the event may be applied again, and the next Apply drops the
// expired markers from the sorted set.
func TestMarkersExpire(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL(), AppliedRetention: 300 * time.Millisecond})
	c := srv.Client(t)
	a := storetest.SparseIncident("inc-a", "v1:a")
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{a}, EventIDs: []string{"e1", "e2"}, At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Lookup(ctx, nil, []string{"e1", "e2", "e3"})
	if err != nil || !snap.Applied["e1"] || !snap.Applied["e2"] || snap.Applied["e3"] {
		t.Fatalf("lookup before expiry: %v, %v", snap.Applied, err)
	}
	if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"e3", "e2"}, At: storetest.Base}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("apply of a marked event = %v, want ErrConflict", err)
	}
	time.Sleep(400 * time.Millisecond)
	snap, err = s.Lookup(ctx, nil, []string{"e1", "e2"})
	if err != nil || len(snap.Applied) != 0 {
		t.Fatalf("lookup after expiry: %v, %v", snap.Applied, err)
	}
	if n := c.ZCard(ctx, "llm-im:applied").Val(); n != 2 {
		t.Fatalf("%d markers before the next apply, want the 2 expired ones", n)
	}
	if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"e2"}, At: storetest.Base}); err != nil {
		t.Fatalf("apply of an expired event: %v", err)
	}
	if got := c.ZRange(ctx, "llm-im:applied", 0, -1).Val(); !slices.Equal(got, []string{"e2"}) {
		t.Fatalf("markers after the next apply = %v, want [e2]", got)
	}
}

// TestBatchMovesItsOwnPointers: within one batch, a new incident must
// reopen the incident the batch itself last moved its identity to.
func TestBatchMovesItsOwnPointers(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL()})
	c := srv.Client(t)
	a := storetest.SparseIncident("inc-a", "v1:a")
	a.State = incident.Resolved
	twin := storetest.SparseIncident("inc-twin", "v1:a")
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{a, twin}, EventIDs: []string{"e1"}, At: storetest.Base}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second new incident of an identity without reopen_of = %v, want ErrConflict", err)
	}
	// Only the layout marker New wrote.
	if keys := c.Keys(ctx, "llm-im:*").Val(); !slices.Equal(keys, []string{"llm-im:schema"}) {
		t.Fatalf("keys after a conflict: %v", keys)
	}
	next := storetest.SparseIncident("inc-next", "v1:a")
	next.ReopenOf = "inc-a"
	b := storetest.SparseIncident("inc-b", "v1:b")
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{a, b, next}, EventIDs: []string{"e1"}, At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	for fp, want := range map[string]string{"v1:a": "inc-next", "v1:b": "inc-b"} {
		if got := c.Get(ctx, "llm-im:identity:"+fp).Val(); got != want {
			t.Errorf("identity pointer of %s = %q, want %q", fp, got, want)
		}
	}
	if got := c.SMembers(ctx, "llm-im:fingerprint:v1:a").Val(); len(got) != 2 {
		t.Errorf("fingerprint set = %v, want both incidents", got)
	}
}

// TestApplyOverForeignRecord: a stored record of another shape (here
// indented, so version is not the last bytes) is still version-checked
// and its index memberships still move.
func TestApplyOverForeignRecord(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL()})
	c := srv.Client(t)
	a := storetest.SparseIncident("inc-a", "v1:a")
	a.State, a.Severity = incident.Detected, incident.P1
	storetest.Put(t, s, a)
	raw, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "llm-im:incident:inc-a", raw, 0)
	a2 := storetest.Update(a, func(in *incident.Incident) { in.State, in.Severity = incident.Resolved, incident.P4 })
	skip := storetest.Update(a2, func(*incident.Incident) {})
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{skip}, EventIDs: []string{"e0"}, At: storetest.Base}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("apply of v3 over v1 = %v, want ErrConflict", err)
	}
	storetest.Put(t, s, a2)
	for k, n := range map[string]int64{"llm-im:state:Detected": 0, "llm-im:state:Resolved": 1, "llm-im:severity:P1": 0, "llm-im:severity:P4": 1} {
		if got := c.SCard(ctx, k).Val(); got != n {
			t.Errorf("SCARD %s = %d, want %d", k, got, n)
		}
	}
}

// TestOpenedLogLine: the "redis store opened" line writes applied_retention
// as the configuration does ("36h"), not as a number of seconds.
func TestOpenedLogLine(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := redis.New(redis.Config{URL: srv.URL(), AppliedRetention: 36 * time.Hour}, zap.New(core), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened := logs.FilterMessage("redis store opened").All()
	if len(opened) != 1 {
		t.Fatalf("%d opened lines: %v", len(opened), logs.All())
	}
	// A duration field: incidentd's JSON encoder writes it as a string
	// ("36h0m0s"), not a number of seconds (app.NewLoggerTo).
	if got := opened[0].ContextMap()["applied_retention"]; got != 36*time.Hour {
		t.Errorf("applied_retention = %#v, want 36h", got)
	}
}

// TestPing: Ping answers while redis-server runs, fails while it is
// killed, answers again once it is back on its port (the client redials),
// and is storage.ErrClosed after Close.
func TestPing(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL(), DialTimeout: 200 * time.Millisecond})
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	srv.Kill()
	redistest.Eventually(t, 10*time.Second, "Ping to fail", func() error {
		if err := s.Ping(ctx); err == nil {
			return errors.New("Ping answered with the server killed")
		}
		return nil
	})
	srv.Restart(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the restart: %v", err)
	}
	_ = s.Close()
	if err := s.Ping(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Ping after Close: %v, want storage.ErrClosed", err)
	}
}
