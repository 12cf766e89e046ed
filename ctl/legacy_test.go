package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// legacyFixture is the old system's "Export to JSON": a pretty-printed
// array of five incidents (Detected, Triaged, Resolved by hand, Closed
// with no resolution, Resolved automatically).
const legacyFixture = "../" + redistest.LegacyFixture

// The migrated Detected incident of the fixture, and its alert.
const (
	legacyDetectedID = "6f1c2a9e-5b7d-4c3e-9a11-0d2f4e6b8c01"
	legacyTriagedID  = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
)

func legacyAlert(at time.Time) incident.Event {
	return incident.Event{ID: "after-migration-1", Source: "llm-gateway", Type: incident.Performance, Title: "P95 latency above 2s",
		Resources: []string{"gw-1", "gw-2"}, Severity: incident.P0, OccurredAt: at}
}

// TestImportLegacyExport: the old system's export, refused before (its
// fingerprint "is not v1", type and peak_severity missing, ...), imports
// into Pebble, converted as the README says, and verifies; the alert of a
// migrated open incident, sent again, merges into it.
func TestImportLegacyExport(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "pebble")
	r := runCtl(t, nil, "", "import", "-f", legacyFixture, "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitOK)
	for _, s := range []string{"converted 5 of 5 records from the old system's format (LLM Incident Manager)", "copied 5 incidents"} {
		if !strings.Contains(r.out, s) {
			t.Errorf("stdout does not say %q:\n%s", s, r.out)
		}
	}
	mustCode(t, runCtl(t, nil, "", "verify", "--state-backend", "pebble", "--state-path", dst), ctl.ExitOK)
	s := openPebble(t, dst)
	defer s.Close()
	ctx := context.Background()
	tri, err := s.Get(ctx, legacyTriagedID)
	if err != nil {
		t.Fatal(err)
	}
	if tri.State != incident.Triaged || tri.Type != incident.Security || tri.AcknowledgedAt == nil ||
		!tri.AcknowledgedAt.Equal(time.Date(2024, 5, 1, 22, 5, 0, 250e6, time.UTC)) {
		t.Errorf("the Triaged incident: %+v", tri)
	}
	det, err := s.Get(ctx, legacyDetectedID)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	ev := legacyAlert(det.LastSeen.Add(time.Minute))
	if got := fp.Fingerprint(&ev); det.Fingerprint != got || !slices.Equal(det.Resources, []string{"gw-1", "gw-2"}) ||
		det.PeakSeverity != incident.P1 || !det.FirstSeen.Equal(det.CreatedAt.Truncate(time.Microsecond)) || !det.LastSeen.Equal(det.UpdatedAt) ||
		det.FirstSeen.Equal(det.CreatedAt) { // event times are kept to the microsecond; created_at, 09:15:00.123456789, as it was
		t.Fatalf("the Detected incident: %+v (the alert's fingerprint %s)", det, got)
	}
	folder := dedupe.NewFolder(15*time.Minute, uuid.NewString)
	batch := []dedupe.Keyed{{Event: ev, Fingerprint: fp.Fingerprint(&ev)}}
	if _, _, err := storage.Ingest(ctx, s, folder, batch, func() time.Time { return time.Now().UTC() }); err != nil {
		t.Fatal(err)
	}
	det, err = s.Get(ctx, legacyDetectedID)
	if err != nil || det.OccurrenceCount != 2 || det.PeakSeverity != incident.P0 || det.State != incident.Detected {
		t.Fatalf("after the alert fired again: %+v, %v; want it merged", det, err)
	}
}

// TestImportLegacyLinesToRedis: JSON lines of old records import into
// Redis, fingerprinted with the [dedupe] fields of --to-config; a bad old
// record is refused, naming its line, and the hint says it was converted.
func TestImportLegacyLinesToRedis(t *testing.T) {
	var lines bytes.Buffer
	for _, raw := range redistest.ReadLegacyFixture(t, legacyFixture) {
		_ = json.Compact(&lines, raw)
		lines.WriteByte('\n')
	}
	srv := redistest.StartStandalone(t, redistest.Options{})
	cfg := filepath.Join(t.TempDir(), "incidentd.toml")
	writeFile(t, cfg, "[dedupe]\nfields = [\"source\", \"title\"]\n")

	bad := strings.Replace(lines.String(), `"state":"Closed"`, `"state":"Archived"`, 1)
	r := runCtl(t, nil, bad, "import", "--to-config", cfg, "--to-backend", "redis", "--to-redis-url", srv.URL())
	mustCode(t, r, ctl.ExitError)
	for _, s := range []string{"1 of 5 records are invalid", `line 4: not an incident: state: unknown state "Archived"`,
		"hint: 5 records in the old system's format (LLM Incident Manager) were converted before these checks"} {
		if !strings.Contains(r.err, s) {
			t.Errorf("stderr does not say %q:\n%s", s, r.err)
		}
	}
	if n := srv.Client(t).DBSize(context.Background()).Val(); n != 0 {
		t.Fatalf("a refused import wrote %d keys", n)
	}

	r = runCtl(t, nil, lines.String(), "import", "--to-config", cfg, "--to-backend", "redis", "--to-redis-url", srv.URL())
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "converted 5 of 5 records") {
		t.Errorf("stdout: %s", r.out)
	}
	store := []string{"--state-backend", "redis", "--state-redis-url", srv.URL()}
	mustCode(t, runCtl(t, nil, "", append([]string{"verify"}, store...)...), ctl.ExitOK)
	r = runCtl(t, nil, "", append([]string{"get", legacyDetectedID, "-o", "json"}, store...)...)
	mustCode(t, r, ctl.ExitOK)
	fp, _ := dedupe.NewFingerprinter([]string{"source", "title"}, nil)
	ev := incident.Event{Source: "llm-gateway", Title: "p95 latency above 2s"}
	if want := fp.Fingerprint(&ev); !strings.Contains(r.out, `"fingerprint": "`+want+`"`) && !strings.Contains(r.out, `"fingerprint":"`+want+`"`) {
		t.Errorf("get: want fingerprint %s:\n%s", want, r.out)
	}
}

// TestMigrateLegacyRedis: the old system's Redis keyspace is refused by
// every command, which writes nothing into it; migrate copies it,
// converted, into another db or key prefix, leaving it as it was.
func TestMigrateLegacyRedis(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	c := srv.Client(t)
	ctx := context.Background()
	redistest.SeedLegacy(t, c, "llm-im", redistest.ReadLegacyFixture(t, legacyFixture))
	before := keyDump(t, c)
	old := []string{"--state-backend", "redis", "--state-redis-url", srv.URL()}
	for _, cmd := range []string{"count", "list", "verify"} {
		r := runCtl(t, nil, "", append([]string{cmd}, old...)...)
		mustCode(t, r, ctl.ExitError)
		if !strings.Contains(r.err, "holds records of the old system (LLM Incident Manager)") || !strings.Contains(r.err, "incidentctl migrate") {
			t.Errorf("%s: stderr %s", cmd, r.err)
		}
		if got := keyDump(t, c); !maps.Equal(before, got) {
			t.Fatalf("%s wrote into the old keyspace: %d keys, had %d", cmd, len(got), len(before))
		}
	}
	// The same keyspace as target: refused too.
	r := runCtl(t, nil, "", "migrate", "--from-backend", "redis", "--from-redis-url", srv.URL(), "--to-backend", "redis", "--to-redis-url", srv.URL())
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "target: redis: the keyspace llm-im holds records of the old system") {
		t.Errorf("migrate into itself: %s", r.err)
	}
	if r.out != "" { // no "converted" line for records that went nowhere
		t.Errorf("migrate into itself printed on stdout: %s", r.out)
	}
	db1 := strings.TrimSuffix(srv.URL(), "/0") + "/1"
	for _, tc := range []struct{ to, target []string }{
		{[]string{"--to-redis-url", db1}, []string{"--state-redis-url", db1}},
		{[]string{"--to-redis-url", srv.URL(), "--to-key-prefix", "llm-im2"}, []string{"--state-redis-url", srv.URL(), "--state-key-prefix", "llm-im2"}},
	} {
		r := runCtl(t, nil, "", append([]string{"migrate", "--from-backend", "redis", "--from-redis-url", srv.URL(), "--to-backend", "redis"}, tc.to...)...)
		mustCode(t, r, ctl.ExitOK)
		if !strings.Contains(r.out, "converted 5 of 5 records") || !strings.Contains(r.out, "copied 5 incidents") {
			t.Errorf("migrate %v: stdout %s", tc.to, r.out)
		}
		target := append([]string{"--state-backend", "redis"}, tc.target...)
		mustCode(t, runCtl(t, nil, "", append([]string{"verify"}, target...)...), ctl.ExitOK)
		r = runCtl(t, nil, "", append([]string{"count", "--active", "true"}, target...)...)
		mustCode(t, r, ctl.ExitOK)
		var n struct{ Count int }
		if err := json.Unmarshal([]byte(r.out), &n); err != nil || n.Count != 2 {
			t.Errorf("migrate %v: count %s (%v), want 2 open incidents", tc.to, r.out, err)
		}
	}
	if got := keyDump(t, c); !maps.Equal(before, got) {
		t.Fatal("migrate changed the source keyspace")
	}
	if n := c.Exists(ctx, "llm-im:schema", "llm-im:state:Active").Val(); n != 0 {
		t.Fatalf("%d of llm-im:schema, llm-im:state:Active written", n)
	}
}

// keyDump is every key of the old keyspace (llm-im:*) with its DUMP
// payload.
func keyDump(t *testing.T, c *goredis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "llm-im:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = c.Dump(ctx, k).Val()
	}
	return out
}
