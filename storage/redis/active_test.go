package redis_test

import (
	"fmt"
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

// activeStateKeys are the per-state sets of the active states under p.
func activeStateKeys(p string) []string {
	var keys []string
	for _, st := range incident.States {
		if st.Active() {
			keys = append(keys, p+":state:"+st.String())
		}
	}
	return keys
}

// requireActiveSet checks that p:state:Active holds exactly the ids of the
// active incidents of all (what the store holds), and so equals the union
// of the four active state sets.
func requireActiveSet(t testing.TB, c goredis.UniversalClient, p string, all []*incident.Incident) {
	t.Helper()
	var want []string
	for _, in := range all {
		if in.Active() {
			want = append(want, in.ID)
		}
	}
	slices.Sort(want)
	got, err := c.SMembers(ctx, p+":state:Active").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("SMEMBERS %s:state:Active = %v, want the active incidents %v", p, got, want)
	}
	union := c.SUnion(ctx, activeStateKeys(p)...).Val()
	slices.Sort(union)
	if !slices.Equal(union, want) && !(len(union) == 0 && len(want) == 0) {
		t.Fatalf("SUNION of the active state sets = %v, want %v", union, want)
	}
}

// activeCase is one deployment the active-set tests run on: a store
// config (its KeyPrefix filled in per test) and a client that sees its keys.
type activeCase struct {
	cfg redis.Config
	c   goredis.UniversalClient
}

// prefix is the key prefix a store opened with cfg writes under.
func (ac activeCase) prefix(cfg redis.Config) string {
	if cfg.Cluster {
		return "{" + cfg.KeyPrefix + "}"
	}
	return cfg.KeyPrefix
}

func activeCases(t *testing.T) map[string]activeCase {
	srv := redistest.StartStandalone(t, redistest.Options{})
	cl := redistest.StartCluster(t)
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs, DisableIdentity: true})
	t.Cleanup(func() { cc.Close() })
	return map[string]activeCase{
		"standalone": {cfg: redis.Config{URL: srv.URL()}, c: srv.Client(t)},
		"cluster":    {cfg: redis.Config{Cluster: true, ClusterNodes: cl.Nodes()}, c: cc},
	}
}

// TestActiveSet runs the active-set checks on standalone and on Cluster
// (where the key is {prefix}:state:Active, in the deployment's slot).
func TestActiveSet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	for name, ac := range activeCases(t) {
		t.Run(name+"/transitions", func(t *testing.T) { activeTransitions(t, ac) })
		t.Run(name+"/upgrade", func(t *testing.T) { activeUpgrade(t, ac) })
		t.Run(name+"/new keyspace", func(t *testing.T) { activeNewKeyspace(t, ac) })
	}
}

// activeTransitions walks incidents through every kind of write the store
// gets (new, acknowledge, resolve, reopen, a resolve and a reopen in one
// batch, quiet-period timeouts by ExpireQuiet and inside a fold, direct
// state changes between active states and to Closed, deletes) and checks
// after each step that the active set holds exactly the active incidents.
func activeTransitions(t *testing.T, ac activeCase) {
	cfg := ac.cfg
	cfg.KeyPrefix = uniquePrefix(t)
	p := ac.prefix(cfg)
	s := open(t, cfg)
	f := dedupe.NewFolder(time.Minute, storetest.NewIDs("inc"))
	min := int64(time.Minute / time.Microsecond)
	check := func(step string) []*incident.Incident {
		t.Helper()
		all := storetest.ListAll(t, s)
		t.Run(step, func(t *testing.T) {
			requireActiveSet(t, ac.c, p, all)
			yes, no := true, false
			storetest.CheckFilter(t, s, all, "active=true", storage.Filter{Active: &yes})
			storetest.CheckFilter(t, s, all, "active=false", storage.Filter{Active: &no})
			storetest.CheckFilter(t, s, all, "active=true, Triaged", storage.Filter{Active: &yes, States: []incident.State{incident.Triaged}})
			storetest.CheckFilter(t, s, all, "active=true, P1", storage.Filter{Active: &yes, Severities: []incident.Severity{incident.P1}})
			storetest.CheckFilter(t, s, all, "active=true, since", storage.Filter{Active: &yes, Since: storetest.At(2)})
		})
		return all
	}
	ingest := func(evs ...incident.Event) {
		t.Helper()
		storetest.IngestAll(t, s, f, storetest.Key(evs...), len(evs))
	}
	activeOf := func(all []*incident.Incident, key string) *incident.Incident {
		t.Helper()
		for _, in := range all {
			if in.DedupKey == key && in.Active() {
				return in
			}
		}
		t.Fatalf("no active incident of %s", key)
		return nil
	}

	ingest(storetest.Trigger("e1", "k1", 1, incident.P1), storetest.Trigger("e2", "k2", 2, incident.P2),
		storetest.Trigger("e3", "k3", 3, incident.P3), storetest.Trigger("e4", "k4", 4, incident.P1))
	check("new: Detected")
	ingest(storetest.Control("e5", "k1", incident.Acknowledge, 10))
	check("acknowledge: Triaged")
	ingest(storetest.Control("e6", "k2", incident.Resolve, 20))
	check("resolve: Resolved")
	ingest(storetest.Trigger("e7", "k2", 30, incident.P0))
	check("reopen")
	// A resolve and a reopen of k3 and an acknowledge of k4, one batch.
	ingest(storetest.Control("e8", "k3", incident.Resolve, 40), storetest.Trigger("e9", "k3", 50, incident.P2),
		storetest.Control("e10", "k4", incident.Acknowledge, 60))
	check("resolve and reopen in one batch")
	// k1 quiet for longer than the window: the next trigger resolves it by
	// timeout and opens a new incident, in one fold.
	ingest(storetest.Trigger("e11", "k1", 3*min, incident.P1))
	check("timeout inside the fold")
	if n, err := storage.ExpireQuiet(ctx, s, f, storetest.At(3*min+10), 100); err != nil || n != 3 {
		t.Fatalf("ExpireQuiet = %d, %v; want the 3 quiet incidents (k2, k3, k4)", n, err)
	}
	all := check("timeouts by ExpireQuiet")
	if got := ac.c.SMembers(ctx, p+":state:Active").Val(); len(got) != 1 {
		t.Fatalf("active set after the timeouts = %v, want only k1's new incident", got)
	}
	// States no event reaches: moves between active states, to Closed, and
	// from an inactive state back to an active one.
	var open, resolved *incident.Incident
	for _, in := range all {
		switch {
		case in.Active():
			open = in
		case resolved == nil && in.State == incident.Resolved:
			resolved = in
		}
	}
	steps := []struct {
		in *incident.Incident
		to incident.State
	}{{open, incident.Investigating}, {open, incident.Remediating}, {resolved, incident.Closed}, {open, incident.Closed}}
	for _, st := range steps {
		cur, err := s.Get(ctx, st.in.ID)
		if err != nil {
			t.Fatal(err)
		}
		storetest.Put(t, s, storetest.Update(cur, func(in *incident.Incident) { in.State = st.to }))
		check(fmt.Sprintf("%s to %s", cur.State, st.to))
	}
	// A new incident created in an inactive state (as import writes them)
	// and one in an active state other than Detected.
	imp := storetest.SparseIncident("imp-closed", "v1:imp-closed")
	imp.State = incident.Closed
	inv := storetest.SparseIncident("imp-inv", "v1:imp-inv")
	inv.State = incident.Investigating
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{imp, inv}, At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	check("new incidents in other states")
	ingest(storetest.Trigger("e12", "k5", 4*min, incident.P2))
	all = check("a new identity")
	for _, id := range []string{"imp-inv", "imp-closed", activeOf(all, "k5").ID} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		check("delete " + id)
	}
	if n := ac.c.Exists(ctx, p+":state:Active").Val(); n != 0 {
		t.Fatalf("the active set still exists with no active incident")
	}
}

// TestStateActiveKeyRegression: the reference guide's llm-im:state:Active
// (storage-guide.md, "Data Model") did not exist; a client following the
// guide found no active incident. It holds an incident from Detected
// through Triaged, and loses it on Triaged -> Resolved, in the same write.
func TestStateActiveKeyRegression(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL()})
	c := srv.Client(t)
	f := dedupe.NewFolder(0, storetest.NewIDs("inc"))
	members := func() []string {
		m := c.SMembers(ctx, "llm-im:state:Active").Val()
		slices.Sort(m)
		return m
	}
	storetest.IngestAll(t, s, f, storetest.Key(storetest.Trigger("e1", "a", 1, incident.P0), storetest.Trigger("e2", "b", 2, incident.P1)), 2)
	if got := members(); !slices.Equal(got, []string{"inc-000001", "inc-000002"}) {
		t.Fatalf("after two triggers: SMEMBERS llm-im:state:Active = %v", got)
	}
	storetest.IngestAll(t, s, f, storetest.Key(storetest.Control("e3", "a", incident.Acknowledge, 3)), 1)
	if got := members(); !slices.Equal(got, []string{"inc-000001", "inc-000002"}) {
		t.Fatalf("after an acknowledge: SMEMBERS llm-im:state:Active = %v", got)
	}
	storetest.IngestAll(t, s, f, storetest.Key(storetest.Control("e4", "a", incident.Resolve, 4)), 1)
	if got := members(); !slices.Equal(got, []string{"inc-000002"}) {
		t.Fatalf("after Triaged -> Resolved: SMEMBERS llm-im:state:Active = %v, want [inc-000002]", got)
	}
	if got := c.SInter(ctx, "llm-im:state:Active", "llm-im:severity:P1").Val(); !slices.Equal(got, []string{"inc-000002"}) {
		t.Fatalf("SINTER llm-im:state:Active llm-im:severity:P1 = %v", got)
	}
}

// activeUpgrade: a keyspace written before the active set existed (the set
// and the layout marker deleted) gets it built exactly when stores open,
// once, with several opening at the same moment; a store that finds the
// marker leaves the set alone.
func activeUpgrade(t *testing.T, ac activeCase) {
	cfg := ac.cfg
	cfg.KeyPrefix = uniquePrefix(t)
	p := ac.prefix(cfg)
	s := open(t, cfg)
	all := storetest.Population(300, 5)
	storetest.Put(t, s, all...)
	requireActiveSet(t, ac.c, p, all)
	if n := ac.c.SCard(ctx, p+":state:Active").Val(); n == 0 || n == int64(len(all)) {
		t.Fatalf("population has %d of %d incidents active, want some of each", n, len(all))
	}
	// The previous layout: no marker, no active set.
	if err := ac.c.Del(ctx, p+":state:Active", p+":schema").Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	const pods = 6
	var wg sync.WaitGroup
	stores := make([]*redis.Store, pods)
	errs := make([]error, pods)
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = redis.New(cfg, zap.New(core), prometheus.NewRegistry())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if built := logs.FilterMessageSnippet("active set built").Len(); built != 1 {
		t.Fatalf("%d of %d opening stores built the active set, want exactly 1", built, pods)
	}
	requireActiveSet(t, ac.c, p, all)
	if got := ac.c.Get(ctx, p+":schema").Val(); got != "2" {
		t.Fatalf("layout marker = %q after the upgrade, want 2", got)
	}
	yes := true
	storetest.CheckFilter(t, stores[0], all, "active=true", storage.Filter{Active: &yes})
	// Writes after the upgrade keep it exact.
	var next []*incident.Incident
	for _, in := range all[len(all)-20:] {
		to := incident.Resolved
		if !in.Active() {
			to = incident.Closed
		}
		next = append(next, storetest.Update(in, func(c *incident.Incident) { c.State = to }))
	}
	storetest.Put(t, stores[1], next...)
	all = storetest.ListAll(t, stores[2])
	requireActiveSet(t, ac.c, p, all)
	// Guarded by the marker: opening again does not rebuild (the stray
	// member stays), and deleting the marker alone makes the next open
	// rebuild it from the state sets.
	if err := ac.c.SAdd(ctx, p+":state:Active", "stray").Err(); err != nil {
		t.Fatal(err)
	}
	open(t, cfg)
	if !ac.c.SIsMember(ctx, p+":state:Active", "stray").Val() {
		t.Fatal("a store that found the marker rebuilt the active set")
	}
	if err := ac.c.Del(ctx, p+":schema").Err(); err != nil {
		t.Fatal(err)
	}
	open(t, cfg)
	requireActiveSet(t, ac.c, p, all)
}

// activeNewKeyspace: a store opening on a keyspace that holds no incident
// (a new deployment) writes the layout marker without announcing an
// upgrade (a debug line only); one whose incidents are all resolved still
// announces the upgrade it made, with 0 active incidents.
func activeNewKeyspace(t *testing.T, ac activeCase) {
	cfg := ac.cfg
	cfg.KeyPrefix = uniquePrefix(t)
	p := ac.prefix(cfg)
	openLogged := func() *observer.ObservedLogs {
		t.Helper()
		core, logs := observer.New(zapcore.DebugLevel)
		s, err := redis.New(cfg, zap.New(core), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return logs
	}
	logs := openLogged()
	if n := logs.FilterMessageSnippet("layout upgraded").Len(); n != 0 {
		t.Fatalf("a new keyspace logged %d layout upgrades, want none", n)
	}
	if l := logs.FilterMessage("redis key layout marker written on an empty keyspace").All(); len(l) != 1 || l[0].Level != zapcore.DebugLevel {
		t.Fatalf("marker lines on a new keyspace: %v, want one at debug", l)
	}
	if got := ac.c.Get(ctx, p+":schema").Val(); got != "2" {
		t.Fatalf("layout marker = %q on a new keyspace, want 2", got)
	}
	// Resolved incidents only, in the layout of before: an upgrade, logged.
	s := open(t, cfg)
	var all []*incident.Incident
	for _, in := range storetest.Population(20, 5) {
		if !in.Active() {
			all = append(all, in)
		}
	}
	if len(all) == 0 {
		t.Fatal("the population has no resolved incident")
	}
	storetest.Put(t, s, all...)
	if err := ac.c.Del(ctx, p+":state:Active", p+":schema").Err(); err != nil {
		t.Fatal(err)
	}
	logs = openLogged()
	l := logs.FilterMessage("redis key layout upgraded: active set built from the state sets").All()
	if len(l) != 1 || l[0].Level != zapcore.InfoLevel || l[0].ContextMap()["active_incidents"] != int64(0) {
		t.Fatalf("upgrade lines on a keyspace of resolved incidents: %v, want one at info with 0 active incidents", l)
	}
	if logs.FilterMessageSnippet("empty keyspace").Len() != 0 {
		t.Fatal("a keyspace holding incidents was called empty")
	}
}
