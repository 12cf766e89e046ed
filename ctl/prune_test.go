package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/storetest"
)

// pruneFixture writes incidents around a 48h retention into s and returns
// the ids prune must delete: Resolved ones that ended 100 hours ago. It
// keeps Closed ones with an old last event but a change an hour ago, open
// ones with an old last event, and Resolved ones of an hour ago.
func pruneFixture(t *testing.T, s storage.Store) map[string]bool {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	old, recent := now.Add(-100*time.Hour), now.Add(-time.Hour)
	expired := map[string]bool{}
	var all []*incident.Incident
	add := func(kind string, n int, state incident.State, lastSeen, updated time.Time) {
		for i := range n {
			in := storetest.SparseIncident(fmt.Sprintf("%s-%02d", kind, i), fmt.Sprintf("v1:%s%02d", kind, i))
			in.State, in.Source = state, storetest.Sources[i%len(storetest.Sources)]
			in.FirstSeen, in.CreatedAt = lastSeen.Add(-time.Minute), lastSeen
			in.LastSeen, in.UpdatedAt = lastSeen.Add(time.Duration(i)*time.Second), updated
			all = append(all, in)
			if kind == "expired" {
				expired[in.ID] = true
			}
		}
	}
	add("expired", 30, incident.Resolved, old, old.Add(time.Hour))
	add("closed-lately", 10, incident.Closed, old, recent)
	add("open-old", 10, incident.Detected, old, old)
	add("resolved-recent", 10, incident.Resolved, recent, recent)
	storetest.Put(t, s, all...)
	return expired
}

// checkPruned fails unless s holds exactly the fixture's incidents that
// are not in expired.
func checkPruned(t *testing.T, s storage.Store, expired map[string]bool) {
	t.Helper()
	ctx := context.Background()
	all := allIncidents(t, s)
	if len(all) != 30 {
		t.Fatalf("%d incidents left, want 30", len(all))
	}
	for _, in := range all {
		if expired[in.ID] {
			t.Fatalf("%s was not pruned", in.ID)
		}
	}
	for id := range expired {
		if _, err := s.Get(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get pruned %s = %v", id, err)
		}
	}
}

func pruneJSON(t *testing.T, r result) map[string]any {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("prune -o json: %v\n%s", err, r.out)
	}
	return got
}

// TestPrunePebble: usage errors, a dry run (by the configuration's
// retention) that deletes nothing, the prune itself, and a second prune
// that finds nothing; verify holds after it.
func TestPrunePebble(t *testing.T) {
	dir := t.TempDir() + "/pebble"
	s := openPebble(t, dir)
	expired := pruneFixture(t, s)
	_ = s.Close()
	args := []string{"--state-backend", "pebble", "--state-path", dir}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--older-than DURATION is required"},
		{[]string{"--older-than", "0s"}, "must be positive"},
		{[]string{"--older-than", "-1h"}, "must be positive"},
		{[]string{"--older-than", "2d"}, "older-than"},
		{[]string{"--older-than", "48h", "-o", "yaml"}, "--output"},
		{[]string{"--older-than", "48h", "--dry-run", "--compact"}, "a --dry-run deletes nothing"},
	} {
		r := runCtl(t, nil, "", append(append([]string{"prune"}, tc.args...), args...)...)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, tc.want) {
			t.Errorf("prune %v: stderr %q, want %q", tc.args, r.err, tc.want)
		}
	}

	cfgFile := t.TempDir() + "/incidentd.toml"
	writeFile(t, cfgFile, fmt.Sprintf("[state]\npath = %q\nincident_retention = \"48h\"\n", dir))
	r := runCtl(t, nil, "", "prune", "--config", cfgFile, "--dry-run", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	got := pruneJSON(t, r)
	if got["incidents"] != float64(30) || got["dry_run"] != true || got["older_than"] != "48h0m0s" {
		t.Fatalf("dry run report %v", got)
	}
	s = openPebble(t, dir)
	if n := len(allIncidents(t, s)); n != 60 {
		t.Fatalf("the dry run left %d incidents, want 60", n)
	}
	_ = s.Close()

	r = runCtl(t, nil, "", append([]string{"prune", "--older-than", "48h"}, args...)...)
	mustCode(t, r, ctl.ExitOK)
	if !strings.HasPrefix(r.out, "pruned 30 incidents: Resolved or Closed, last seen and updated before ") {
		t.Fatalf("prune output %q", r.out)
	}
	s = openPebble(t, dir)
	checkPruned(t, s, expired)
	_ = s.Close()
	r = runCtl(t, nil, "", append([]string{"prune", "--older-than", "48h", "--compact", "-o", "json"}, args...)...)
	mustCode(t, r, ctl.ExitOK)
	got = pruneJSON(t, r)
	if got["incidents"] != float64(0) || got["dry_run"] != false || got["compacted"] != true {
		t.Fatalf("second prune report %v", got)
	}
	if before, after := got["size_before_bytes"], got["size_after_bytes"]; before == nil || after == nil || after.(float64) <= 0 {
		t.Fatalf("compaction sizes %v, %v", before, after)
	}
	verifyClean(t, args)
}

// TestPruneRedis prunes a Redis store that a worker (here a store of this
// test) holds open, as the README allows.
func TestPruneRedis(t *testing.T) {
	s, args := heldRedis(t)
	expired := pruneFixture(t, s)
	r := runCtl(t, nil, "", append([]string{"prune", "--older-than", "48h", "--dry-run"}, args...)...)
	mustCode(t, r, ctl.ExitOK)
	if !strings.HasPrefix(r.out, "would prune (dry run) 30 incidents") {
		t.Fatalf("dry run output %q", r.out)
	}
	r = runCtl(t, nil, "", append([]string{"prune", "--older-than", "48h"}, args...)...)
	mustCode(t, r, ctl.ExitOK)
	if !strings.HasPrefix(r.out, "pruned 30 incidents") {
		t.Fatalf("prune output %q", r.out)
	}
	checkPruned(t, s, expired)
	verifyClean(t, args)
	r = runCtl(t, nil, "", append([]string{"prune", "--older-than", "48h", "--compact"}, args...)...)
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "--compact is for Pebble") {
		t.Fatalf("--compact on Redis: %q", r.err)
	}
}

// TestPruneCompactSize: after a prune of most of a Pebble store with
// --compact, the size reported after is below the size before and is what
// the directory holds once the command returns (Pebble's own figure right
// after the compaction still counted the files it was about to delete).
func TestPruneCompactSize(t *testing.T) {
	dir := t.TempDir() + "/pebble"
	s := openPebble(t, dir)
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(1, 2))
	desc := make([]byte, 1500)
	var batch []*incident.Incident
	for i := range 12000 {
		in := storetest.SparseIncident(fmt.Sprintf("inc-%05d", i), fmt.Sprintf("v1:%032x", i))
		in.State, in.Source = incident.Resolved, storetest.Sources[i%len(storetest.Sources)]
		at := now.Add(-100 * time.Hour)
		if i%20 == 0 { // one in 20 is recent: kept
			at = now.Add(-time.Hour)
		}
		in.FirstSeen, in.LastSeen, in.CreatedAt, in.UpdatedAt = at, at, at, at
		for j := range desc { // incompressible, so the store has a size to free
			desc[j] = byte('a' + rng.IntN(26))
		}
		in.Description = string(desc)
		if batch = append(batch, in); len(batch) == 500 {
			if err := s.Apply(context.Background(), storage.Batch{Incidents: batch, At: now}); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	_ = s.Close()
	r := runCtl(t, nil, "", "prune", "--older-than", "48h", "--compact", "-o", "json", "--state-path", dir)
	mustCode(t, r, ctl.ExitOK)
	onDisk := dirBytes(t, dir)
	var got struct {
		Incidents int     `json:"incidents"`
		Before    float64 `json:"size_before_bytes"`
		After     float64 `json:"size_after_bytes"`
	}
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	t.Logf("before %.0f, after %.0f, on disk after the command %d", got.Before, got.After, onDisk)
	switch {
	case got.Incidents != 11400:
		t.Errorf("pruned %d incidents, want 11400", got.Incidents)
	case got.After >= got.Before:
		t.Errorf("size after %.0f, not below the size before %.0f", got.After, got.Before)
	case math.Abs(got.After-float64(onDisk)) > 0.03*float64(onDisk):
		t.Errorf("size after %.0f, the directory holds %d", got.After, onDisk)
	}
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
