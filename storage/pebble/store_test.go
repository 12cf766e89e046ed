package pebble_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/pebble"
	"github.com/llm-im/incidentd/storage/storetest"
)

// The helper process: when INCIDENTD_PEBBLE_HELPER is set, the test binary
// acts on the directory it names instead of running tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv("INCIDENTD_PEBBLE_HELPER"); dir != "" {
		os.Exit(helper(dir, os.Getenv("INCIDENTD_PEBBLE_HELPER_MODE")))
	}
	os.Exit(m.Run())
}

// helper either holds the store open until stdin closes ("hold") or writes
// synced batches and dies without closing ("crash").
func helper(dir, mode string) int {
	cfg := pebble.DefaultConfig()
	cfg.Path, cfg.CacheSizeMB, cfg.MemtableSizeMB = dir, 8, 4
	s, err := pebble.New(cfg, nil, nil)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	switch mode {
	case "hold":
		fmt.Println("ready")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	case "crash":
		for i := range 50 {
			in := storetest.SparseIncident(fmt.Sprintf("inc-%02d", i), fmt.Sprintf("fp-%02d", i))
			b := storage.Batch{Incidents: []*incident.Incident{in}, EventIDs: []string{fmt.Sprintf("ev-%02d", i)}, At: storetest.Base}
			if err := s.Apply(context.Background(), b); err != nil {
				fmt.Println("error:", err)
				return 1
			}
		}
		fmt.Println("applied")
		os.Exit(0) // no Close: the synced WAL is all there is
	}
	return 0
}

func helperCmd(t *testing.T, dir, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INCIDENTD_PEBBLE_HELPER="+dir, "INCIDENTD_PEBBLE_HELPER_MODE="+mode)
	return cmd
}

func TestLockedDirectory(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)

	_, err := pebble.New(cfg, zaptest.NewLogger(t), nil)
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), cfg.Path) {
		t.Fatalf("second store in the process: err = %v, want ErrLocked naming %s", err, cfg.Path)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := helperCmd(t, cfg.Path, "hold")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper: %q", line)
	}
	_, err = pebble.New(cfg, zaptest.NewLogger(t), nil)
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), cfg.Path) {
		t.Errorf("directory held by another process: err = %v, want ErrLocked naming %s", err, cfg.Path)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	open(t, cfg) // released with the process
}

// TestLockSurvivesADeletedLockFile: the old system's guide told operators to
// delete sled's lock file after a crash. With Pebble's LOCK deleted while a
// process holds the directory, a second process must still be refused: it
// would create a new LOCK, take it and open the directory beside the first.
func TestLockSurvivesADeletedLockFile(t *testing.T) {
	cfg := testConfig(t)
	cmd := helperCmd(t, cfg.Path, "hold")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper: %q", line)
	}
	if err := os.Remove(filepath.Join(cfg.Path, "LOCK")); err != nil {
		t.Fatal(err)
	}
	s, err := pebble.New(cfg, zaptest.NewLogger(t), nil)
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), "was LOCK deleted?") {
		t.Errorf("directory held by another process, its LOCK file deleted: err = %v, want ErrLocked asking about LOCK", err)
	}
	if s != nil {
		_ = s.Close()
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	open(t, cfg) // released with the process
}

// TestSyncedBatchesSurviveAProcessDeath: a process applies synced batches
// and exits without Close; everything is there on reopen.
func TestSyncedBatchesSurviveAProcessDeath(t *testing.T) {
	dir := t.TempDir()
	out, err := helperCmd(t, dir, "crash").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applied") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	cfg := testConfig(t)
	cfg.Path = dir
	s := open(t, cfg)
	ctx := t.Context()
	if n, err := s.Count(ctx, storage.Filter{}); err != nil || n != 50 {
		t.Fatalf("count = %d, %v; want 50", n, err)
	}
	if n, err := s.Count(ctx, storage.Filter{Severities: []incident.Severity{incident.P4}}); err != nil || n != 50 {
		t.Fatalf("counter of P4 = %d, %v; want 50", n, err)
	}
	snap, err := s.Lookup(ctx, []string{"fp-07"}, []string{"ev-07", "ev-99"})
	if err != nil || snap.Latest["fp-07"] == nil || !snap.Applied["ev-07"] || snap.Applied["ev-99"] {
		t.Fatalf("lookup after reopen: %+v, %v", snap, err)
	}
}

func TestPurgeExpiredMarkers(t *testing.T) {
	cfg := testConfig(t)
	cfg.AppliedRetention = time.Hour
	s := open(t, cfg)
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 10_000 // more than one purge chunk
	for i := range n / 1000 {
		ids := make([]string, 1000)
		for j := range ids {
			ids[j] = fmt.Sprintf("ev-%d-%d", i, j)
		}
		if err := s.Apply(ctx, storage.Batch{EventIDs: ids, At: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		now        time.Time
		purged     int
		gone, kept string
	}{
		{t0.Add(time.Hour), 0, "", "ev-0-0"},
		{t0.Add(time.Hour + 4*time.Minute + time.Second), 5000, "ev-4-999", "ev-5-0"},
		{t0.Add(time.Hour + 4*time.Minute + time.Second), 0, "ev-0-0", "ev-9-999"},
		{t0.Add(2 * time.Hour), 5000, "ev-9-999", ""},
	}
	for i, tc := range tests {
		got, err := s.PurgeExpiredMarkers(tc.now)
		if err != nil || got != tc.purged {
			t.Fatalf("step %d: purged %d, %v; want %d", i, got, err, tc.purged)
		}
		snap, err := s.Lookup(ctx, nil, []string{tc.gone, tc.kept})
		if err != nil {
			t.Fatal(err)
		}
		if tc.gone != "" && snap.Applied[tc.gone] {
			t.Errorf("step %d: %s still applied", i, tc.gone)
		}
		if tc.kept != "" && !snap.Applied[tc.kept] {
			t.Errorf("step %d: %s purged too early", i, tc.kept)
		}
	}
	// A purged event applies again.
	if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"ev-0-0"}, At: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatalf("re-apply after purge: %v", err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPurgeRunsInTheBackground: the store purges without being asked.
func TestPurgeRunsInTheBackground(t *testing.T) {
	cfg := testConfig(t)
	cfg.AppliedRetention = time.Millisecond
	cfg.PurgeInterval = 10 * time.Millisecond
	s := open(t, cfg)
	ctx := t.Context()
	if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"ev-1"}, At: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	for {
		snap, err := s.Lookup(ctx, nil, []string{"ev-1"})
		if err != nil {
			t.Fatal(err)
		}
		if !snap.Applied["ev-1"] {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("marker never purged")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestCheckpointIsAConsistentCopy: a checkpoint of a live store opens as a
// store with the same incidents, and writes after it do not leak into it.
func TestCheckpointIsAConsistentCopy(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	ctx := t.Context()
	pop := storetest.Population(200, 7)
	storetest.Put(t, s, pop...)
	backup := filepath.Join(t.TempDir(), "backup")
	if err := s.Checkpoint(backup); err != nil {
		t.Fatal(err)
	}
	storetest.Put(t, s, storetest.SparseIncident("after", "fp-after"))
	if err := s.Checkpoint(backup); err == nil {
		t.Error("checkpoint over an existing directory succeeded")
	}
	bcfg := testConfig(t)
	bcfg.Path = backup
	b := open(t, bcfg)
	storetest.RequireSame(t, "checkpoint", storetest.Expect(pop, storage.Filter{}), storetest.ListAll(t, b))
	storetest.CheckFilters(t, b, pop)
	if _, err := b.Get(ctx, "after"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("write after the checkpoint is in it: %v", err)
	}
}

// TestCountsAgreeWithScans compares counter answers, index walks and
// Filter.Match on a population, with time ranges, after reopen.
func TestCountsAgreeWithScans(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	pop := storetest.Population(500, 3)
	storetest.Put(t, s, pop...)
	check := func(s storage.Store) {
		for _, nf := range storetest.Filters(pop) {
			want := int64(len(storetest.Expect(pop, nf.Filter)))
			got, err := s.Count(t.Context(), nf.Filter)
			if err != nil || got != want {
				t.Errorf("%s: count %d, %v; want %d", nf.Name, got, err, want)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(open(t, cfg))
}

func TestCollector(t *testing.T) {
	cfg := testConfig(t)
	cfg.RecordCacheMB = 1
	reg := prometheus.NewPedanticRegistry()
	s, err := pebble.New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	pop := storetest.Population(50, 1)
	storetest.Put(t, s, pop...)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The flush moved every record into an sstable; the record cache still
	// answers the lookup of every identity's latest incident.
	fps := map[string]bool{}
	for _, in := range pop {
		fps[in.Fingerprint] = true
	}
	snap, err := s.Lookup(t.Context(), slices.Collect(maps.Keys(fps)), nil)
	if err != nil || len(snap.Latest) != 17 {
		t.Fatalf("lookup: %d incidents, %v", len(snap.Latest), err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	n, err := testutil.GatherAndCount(reg)
	// incidentd_store_size_bytes belongs to the worker's metrics (from Stats),
	// not to this collector: registering it twice would fail at start.
	if err != nil || n != 16 {
		t.Fatalf("series = %d, %v; want 16", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		values[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	if values["incidentd_pebble_flushes_total"] < 1 || values["incidentd_pebble_memtable_size_bytes"] <= 0 {
		t.Errorf("after a flush: %v", values)
	}
	if got := values["incidentd_pebble_identities"]; got != 17 { // Population: 3 incidents per fingerprint
		t.Errorf("identities = %v, want 17", got)
	}
	if values["incidentd_pebble_record_cache_entries"] != 50 || values["incidentd_pebble_record_cache_bytes"] <= 0 ||
		values["incidentd_pebble_record_cache_hits_total"] != 17 || values["incidentd_pebble_record_cache_misses_total"] != 0 {
		t.Errorf("record cache after 50 writes and 17 lookups: %v", values)
	}
	if st, err := s.Stats(t.Context()); err != nil || st.SizeOnDisk <= 0 || st.Incidents != 50 {
		t.Errorf("stats: %+v, %v", st, err)
	}
	if problems, err := testutil.CollectAndLint(pebble.Collector(s)); err != nil || len(problems) > 0 {
		t.Errorf("CollectAndLint: %v %v", problems, err)
	}
	// Close unregisters, so the directory can be reopened on the same registry.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := pebble.New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("reopen on the same registry: %v", err)
	}
	_ = r.Close()
}

// TestApplyDoesNotTrustStaleLookups: Apply may reuse the last Lookup's
// reads, but never after another write committed in between.
func TestApplyDoesNotTrustStaleLookups(t *testing.T) {
	ctx := t.Context()
	in := storetest.SparseIncident("inc-1", "fp-1")
	tests := []struct {
		name  string
		other func(s *pebble.Store) error
	}{
		{"update", func(s *pebble.Store) error {
			return s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{storetest.Update(in, func(*incident.Incident) {})}, EventIDs: []string{"ev-b"}})
		}},
		{"event", func(s *pebble.Store) error {
			return s.Apply(ctx, storage.Batch{EventIDs: []string{"ev-a"}})
		}},
		{"delete", func(s *pebble.Store) error { return s.Delete(ctx, "inc-1") }},
		{"update after many writes", func(s *pebble.Store) error {
			for i := range 12 { // more commits than the write-log ring holds
				if err := s.Apply(ctx, storage.Batch{EventIDs: []string{fmt.Sprintf("filler-%d", i)}}); err != nil {
					return err
				}
			}
			return s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{storetest.Update(in, func(*incident.Incident) {})}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, testConfig(t))
			storetest.Put(t, s, in)
			snap, err := s.Lookup(ctx, []string{"fp-1"}, []string{"ev-a"})
			if err != nil || snap.Latest["fp-1"] == nil || snap.Applied["ev-a"] {
				t.Fatalf("lookup: %+v %v", snap, err)
			}
			if err := tc.other(s); err != nil {
				t.Fatal(err)
			}
			next := storetest.Update(snap.Latest["fp-1"], func(*incident.Incident) {})
			err = s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{next}, EventIDs: []string{"ev-a"}})
			if !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("apply on a stale lookup: %v, want ErrConflict", err)
			}
		})
	}
}

// TestApplyUsesLookupsAcrossUnrelatedWrites: the reads of a Lookup stay
// usable (and correct) after writes that committed since, as when the
// worker looks up batch N+1 while batch N commits; a write to the same
// identity in between still conflicts.
func TestApplyUsesLookupsAcrossUnrelatedWrites(t *testing.T) {
	ctx := t.Context()
	s := open(t, testConfig(t))
	a := storetest.SparseIncident("inc-a", "fp-a")
	storetest.Put(t, s, a)
	snap, err := s.Lookup(ctx, []string{"fp-a", "fp-new"}, []string{"ev-1"})
	if err != nil {
		t.Fatal(err)
	}
	// Unrelated writes commit between the Lookup and the Apply.
	other := storetest.SparseIncident("inc-b", "fp-b")
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{other}, EventIDs: []string{"ev-0"}}); err != nil {
		t.Fatal(err)
	}
	next := storetest.Update(snap.Latest["fp-a"], func(in *incident.Incident) { in.Severity = incident.P0 })
	fresh := storetest.SparseIncident("inc-new", "fp-new")
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{next, fresh}, EventIDs: []string{"ev-1"}}); err != nil {
		t.Fatalf("apply after an unrelated write: %v", err)
	}
	// A competing open of the same new identity between Lookup and Apply
	// conflicts, through the write log of the competing commit.
	snap, err = s.Lookup(ctx, []string{"fp-race"}, []string{"ev-2"})
	if err != nil || snap.Latest["fp-race"] != nil {
		t.Fatalf("lookup: %+v %v", snap, err)
	}
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{storetest.SparseIncident("inc-r1", "fp-race")}, EventIDs: []string{"ev-3"}}); err != nil {
		t.Fatal(err)
	}
	err = s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{storetest.SparseIncident("inc-r2", "fp-race")}, EventIDs: []string{"ev-2"}})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second open of one identity: %v, want ErrConflict", err)
	}
	var got []string
	for _, in := range storetest.ListAll(t, s) {
		got = append(got, in.ID)
	}
	slices.Sort(got)
	if want := []string{"inc-a", "inc-b", "inc-new", "inc-r1"}; !slices.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	if in := mustGet(t, s, "inc-a"); in.Severity != incident.P0 || in.Version != 2 {
		t.Fatalf("inc-a after the apply: %+v", in)
	}
}

func mustGet(t *testing.T, s *pebble.Store, id string) *incident.Incident {
	t.Helper()
	in, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestConfigFrom(t *testing.T) {
	st := config.Default().State
	st.Path = "/var/lib/incidentd"
	got := pebble.ConfigFrom(st)
	want := pebble.Config{Path: "/var/lib/incidentd", CacheSizeMB: 256, MemtableSizeMB: 64, BloomBitsPerKey: 10,
		Sync: true, AppliedRetention: 24 * time.Hour, PurgeInterval: time.Minute}
	if got != want {
		t.Errorf("ConfigFrom(defaults) = %+v, want %+v", got, want)
	}
}

// TestRegistersBesideTheWorkerMetrics: the worker registers its metrics
// and the store's collector on one registry; the names must not clash.
func TestRegistersBesideTheWorkerMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := metrics.New(reg, metrics.Build{}); err != nil {
		t.Fatal(err)
	}
	s, err := pebble.New(testConfig(t), zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("pebble.New on the worker's registry: %v", err)
	}
	_ = s.Close()
}

// TestIdentityPointersSurviveReopen: the in-memory identity pointers are
// rebuilt from the f/ keys, whatever the fingerprint and id formats, and a
// reopened incident or a Delete moves them.
func TestIdentityPointersSurviveReopen(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	const fp = "v1:0000000000000000000000000000000a"
	first := storetest.SparseIncident("0192f3a4-5b6c-7d8e-9f01-23456789abcd", fp)
	first.State, first.ResolvedBy = incident.Resolved, incident.ResolvedByEvent
	legacy := storetest.SparseIncident("legacy-1", "old-fp")
	storetest.Put(t, s, first, legacy)
	next := storetest.SparseIncident("0192f3a4-5b6c-7d8e-9f01-23456789abce", fp)
	next.ReopenOf = first.ID
	storetest.Put(t, s, next)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	snap, err := s.Lookup(t.Context(), []string{fp, "old-fp", "v1:0000000000000000000000000000000b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Latest[fp]; got == nil || got.ID != next.ID {
		t.Fatalf("latest of %s = %+v, want %s", fp, got, next.ID)
	}
	if got := snap.Latest["old-fp"]; got == nil || got.ID != legacy.ID {
		t.Fatalf("latest of old-fp = %+v, want %s", got, legacy.ID)
	}
	if len(snap.Latest) != 2 {
		t.Fatalf("%d identities found, want 2", len(snap.Latest))
	}
	if err := s.Delete(t.Context(), next.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindOpen(t.Context(), fp); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("FindOpen after deleting the latest = %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	snap, err = s.Lookup(t.Context(), []string{fp}, nil)
	if err != nil || len(snap.Latest) != 0 {
		t.Fatalf("after delete and reopen: %v, %v; want no identity", snap.Latest, err)
	}
}

// TestRefusesAForeignDirectory: a data directory with files but no Pebble
// database (the old system's sled directory) is refused, not opened as an
// empty store beside them; an empty directory, or one with only a lock
// file, is a new store.
func TestRefusesAForeignDirectory(t *testing.T) {
	cfg := testConfig(t)
	for _, name := range []string{"conf", "db", "blobs"} {
		if err := os.WriteFile(filepath.Join(cfg.Path, name), []byte("sled"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := pebble.New(cfg, zaptest.NewLogger(t), nil); !errors.Is(err, pebble.ErrForeignDirectory) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("a sled directory opened: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.Path); len(entries) != 3 {
		t.Errorf("the refused directory was changed: %v", entries)
	}
	fresh := testConfig(t)
	if err := os.WriteFile(filepath.Join(fresh.Path, "LOCK"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open(t, fresh)
	// A fresh volume's root: its lost+found directory is no data.
	volume := testConfig(t)
	if err := os.Mkdir(filepath.Join(volume.Path, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := open(t, volume)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, volume)
}

// TestUnfinishedCreationStartsAnew: a process killed while Pebble created
// the store leaves Pebble's files without the manifest marker (a black-box
// run found LOCK and MANIFEST-000001 alone, after which every start was
// refused as a sled directory). Nothing was ever written to such a store,
// so it is created anew, with a warning; a file Pebble does not write
// beside them still makes the directory foreign.
func TestUnfinishedCreationStartsAnew(t *testing.T) {
	unfinished := func(t *testing.T, keep func(name string) bool) pebble.Config {
		t.Helper()
		cfg := testConfig(t)
		s := open(t, cfg)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "marker.manifest.") || !keep(e.Name()) {
				if err := os.Remove(filepath.Join(cfg.Path, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		return cfg
	}
	for name, keep := range map[string]func(string) bool{
		"every file but the manifest marker": func(string) bool { return true },
		"LOCK and the manifest alone":        func(n string) bool { return n == "LOCK" || strings.HasPrefix(n, "MANIFEST-") },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := unfinished(t, keep)
			s := open(t, cfg)
			st, err := s.Stats(t.Context())
			if err != nil || st.Incidents != 0 {
				t.Fatalf("stats %+v, %v; want an empty store", st, err)
			}
			in := storetest.SparseIncident("inc-1", "fp-1")
			if err := s.Apply(t.Context(), storage.Batch{Incidents: []*incident.Incident{in}, EventIDs: []string{"ev-1"}, At: storetest.Base}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, cfg)
			if _, err := s.Get(t.Context(), "inc-1"); err != nil {
				t.Fatalf("after reopening: %v", err)
			}
		})
	}
	t.Run("with a file Pebble does not write", func(t *testing.T) {
		cfg := unfinished(t, func(string) bool { return true })
		if err := os.WriteFile(filepath.Join(cfg.Path, "conf"), []byte("sled"), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := pebble.New(cfg, zaptest.NewLogger(t), nil); !errors.Is(err, pebble.ErrForeignDirectory) {
			if s != nil {
				_ = s.Close()
			}
			t.Fatalf("opened: %v", err)
		}
	})
}

// TestLostMarkerIsNoNewStore: a store whose write-ahead log holds writes
// but whose manifest marker is gone is damaged, not an unfinished
// creation: it is refused, and its files are left as they were.
func TestLostMarkerIsNoNewStore(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	in := storetest.SparseIncident("inc-1", "fp-1")
	if err := s.Apply(t.Context(), storage.Batch{Incidents: []*incident.Incident{in}, EventIDs: []string{"ev-1"}, At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	markers, _ := filepath.Glob(filepath.Join(cfg.Path, "marker.manifest.*"))
	for _, m := range markers {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.ReadDir(cfg.Path)
	s2, err := pebble.New(cfg, zaptest.NewLogger(t), nil)
	if s2 != nil {
		_ = s2.Close()
	}
	if !errors.Is(err, pebble.ErrForeignDirectory) || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("opened or wrong error: %v", err)
	}
	if after, _ := os.ReadDir(cfg.Path); len(after) != len(before) {
		t.Errorf("files changed: %v, then %v", before, after)
	}
}

// TestCorruptionIsAnError: a corrupt sstable makes the reads that meet it
// fail with an error naming the file, counted in
// incidentd_pebble_corruptions_total, instead of Pebble's default, a
// panic (found by a black-box run: the worker crash-looped).
func TestCorruptionIsAnError(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	for i := range 40 {
		var ins []*incident.Incident
		var ids []string
		for j := range 100 {
			n := i*100 + j
			in := storetest.SparseIncident(fmt.Sprintf("inc-%05d", n), fmt.Sprintf("fp-%05d", n))
			in.Description = strings.Repeat("d", 400)
			ins = append(ins, in)
			ids = append(ids, fmt.Sprintf("ev-%05d", n))
		}
		if err := s.Apply(t.Context(), storage.Batch{Incidents: ins, EventIDs: ids, At: storetest.Base}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(cfg.Path, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no sstable to corrupt")
	}
	for _, table := range tables {
		f, err := os.OpenFile(table, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Stat()
		// The middle of the file: record blocks, not the counters at its
		// start (read at open) nor the index and footer at its end.
		for off := info.Size() / 3; off < 2*info.Size()/3; off += 4096 {
			if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}, off); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	reg := prometheus.NewRegistry()
	s, err := pebble.New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	err = s.Scan(t.Context(), func(*incident.Incident) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("scan of a corrupt store: %v; want Pebble's corruption error", err)
	}
	if _, err := s.Get(t.Context(), "inc-02000"); err == nil {
		t.Logf("a Get of a record in a sound block still works") // fine either way: no panic
	}
	mfs, _ := reg.Gather()
	var corruptions float64
	for _, mf := range mfs {
		if mf.GetName() == "incidentd_pebble_corruptions_total" {
			corruptions = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if corruptions < 1 {
		t.Errorf("incidentd_pebble_corruptions_total = %v, want at least 1", corruptions)
	}
}
