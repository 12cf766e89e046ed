package ctl_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// rawPebble opens a closed Pebble store's directory without the store, to
// break it as a crash or a hand edit would (key layout: README, "Key
// layout").
func rawPebble(t *testing.T, dir string, edit func(db *pebbledb.DB) error) {
	t.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quietLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// quietLog sends Pebble's log to the test's.
type quietLog struct{ t *testing.T }

func (l quietLog) Infof(format string, args ...any)  { l.t.Logf(format, args...) }
func (l quietLog) Errorf(format string, args ...any) { l.t.Logf(format, args...) }
func (l quietLog) Fatalf(format string, args ...any) { l.t.Fatalf(format, args...) }

// startPebbleWorker runs an in-process worker on the Pebble store in dir.
func startPebbleWorker(t *testing.T, dir string) *app.App {
	t.Helper()
	cfg := config.Default()
	cfg.State.Path = dir
	cfg.NATS.EmbeddedListen = "127.0.0.1:0"
	cfg.NATS.EmbeddedStoreDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	a, _ := runApp(t, cfg)
	return a
}

// TestVerifyDanglingIndexEntry: an index entry whose record is gone (r/<id>
// deleted) is reported as FAIL lines naming it and exit 4, from the store
// and through a worker's API (whose List answers 500 for such a page), not
// an abort with exit 1.
func TestVerifyDanglingIndexEntry(t *testing.T) {
	dir := filledPebble(t, 300)
	s := openPebble(t, dir)
	all := allIncidents(t, s)
	_ = s.Close()
	gone := all[len(all)/2].ID
	rawPebble(t, dir, func(db *pebbledb.DB) error { return db.Delete([]byte("r/"+gone), pebbledb.Sync) })

	r := runCtl(t, nil, "", "verify", "--state-path", dir)
	mustCode(t, r, ctl.ExitInconsistent)
	if !strings.Contains(r.out, "FAIL index all: List fails at position") || !strings.Contains(r.out, gone) {
		t.Fatalf("verify of a store does not report the dangling entry of %s:\n%s", gone, r.out)
	}
	if !strings.Contains(r.out, "read "+strconv.Itoa(len(all)-1)+" incidents") {
		t.Errorf("verify did not read the other records:\n%s", r.out)
	}
	a := startPebbleWorker(t, dir)
	r = runCtl(t, nil, "", "verify", "--api-url", a.HTTPURL())
	mustCode(t, r, ctl.ExitInconsistent)
	if !strings.Contains(r.out, "FAIL index all: List fails at position") || !strings.Contains(r.out, gone) {
		t.Fatalf("verify through the API does not report the dangling entry of %s:\n%s", gone, r.out)
	}
}

// TestVerifyDanglingFirstEntry: through the API a Count reads a page, so
// an index entry without its record at the head of an index fails that
// Count: verify reports it and goes on (exit 4, and -o json prints the
// report) instead of stopping with exit 1 (black-box re-check finding).
func TestVerifyDanglingFirstEntry(t *testing.T) {
	dir := filledPebble(t, 300)
	s := openPebble(t, dir)
	all := allIncidents(t, s)
	_ = s.Close()
	slices.SortFunc(all, storage.CompareNewestFirst)
	var gone *incident.Incident // the newest of its severity, not the newest of all
	for _, in := range all[1:] {
		if in.Severity != all[0].Severity {
			gone = in
			break
		}
	}
	rawPebble(t, dir, func(db *pebbledb.DB) error {
		if err := db.Delete([]byte("r/"+gone.ID), pebbledb.Sync); err != nil {
			return err
		}
		return db.Delete([]byte("r/"+all[0].ID), pebbledb.Sync) // the newest of all: the head of every Count
	})
	a := startPebbleWorker(t, dir)
	r := runCtl(t, nil, "", "verify", "--api-url", a.HTTPURL(), "-o", "json")
	mustCode(t, r, ctl.ExitInconsistent)
	for _, want := range []string{"index severity=" + gone.Severity.String() + ": Count fails", "Count() fails", `"consistent": false`} {
		if !strings.Contains(r.out, want) {
			t.Errorf("verify -o json through the API: want %q in the report:\n%s\n%s", want, r.out, r.err)
		}
	}
}

// TestVerifyTotalCounter: a total counter (c/a, Stats and
// incidentd_store_incidents) that disagrees with the records is a FAIL.
func TestVerifyTotalCounter(t *testing.T) {
	dir := filledPebble(t, 200)
	s := openPebble(t, dir)
	n := len(allIncidents(t, s))
	_ = s.Close()
	mustCode(t, runCtl(t, nil, "", "verify", "--state-path", dir), ctl.ExitOK)
	rawPebble(t, dir, func(db *pebbledb.DB) error {
		return db.Set([]byte("c/a\x00\x01"), binary.BigEndian.AppendUint64(nil, uint64(n+7)), pebbledb.Sync)
	})
	r := runCtl(t, nil, "", "verify", "--state-path", dir)
	mustCode(t, r, ctl.ExitInconsistent)
	if !strings.Contains(r.out, "FAIL total counter: Stats() counts") {
		t.Fatalf("verify does not report the total counter:\n%s", r.out)
	}
}

// TestVerifyJSON: -o json is one report object, for a sound store and an
// inconsistent one; -o of anything else is a usage error naming both.
func TestVerifyJSON(t *testing.T) {
	dir := filledPebble(t, 100)
	r := runCtl(t, nil, "", "verify", "--state-path", dir, "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	var rep struct {
		Incidents    int      `json:"incidents"`
		Consistent   bool     `json:"consistent"`
		ProblemCount int      `json:"problem_count"`
		Problems     []string `json:"problems"`
		Notes        []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || !rep.Consistent || rep.Incidents == 0 || rep.Problems == nil {
		t.Fatalf("report %+v, %v:\n%s", rep, err, r.out)
	}
	rawPebble(t, dir, func(db *pebbledb.DB) error {
		return db.Set([]byte("c/a\x00\x01"), binary.BigEndian.AppendUint64(nil, 1), pebbledb.Sync)
	})
	r = runCtl(t, nil, "", "verify", "--state-path", dir, "-o", "json")
	mustCode(t, r, ctl.ExitInconsistent)
	rep.Problems = nil
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || rep.Consistent || rep.ProblemCount != 1 || len(rep.Problems) != 1 {
		t.Fatalf("report %+v, %v:\n%s", rep, err, r.out)
	}
	r = runCtl(t, nil, "", "verify", "--state-path", dir, "-o", "yaml")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "want text or json") {
		t.Errorf("stderr %q", r.err)
	}
}

// TestVerifyCommaSourceThroughAPI: a source holding a comma cannot be
// filtered on through the API; verify notes it instead of blaming the
// store, and checks it when reading the store itself.
func TestVerifyCommaSourceThroughAPI(t *testing.T) {
	a := startWorker(t)
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := incident.Event{ID: "e-1", Source: "guard,rails", Title: "jailbreak", OccurredAt: time.Now().UTC()}
	batch := []dedupe.Keyed{{Event: ev, Fingerprint: fp.Fingerprint(&ev)}}
	folder := dedupe.NewFolder(15*time.Minute, func() string { return "0193c5a2-7d1e-7a53-9b1e-5c2f0d7e8a41" })
	if _, _, err := storage.Ingest(context.Background(), a.Store(), folder, batch, time.Now); err != nil {
		t.Fatal(err)
	}
	r := runCtl(t, nil, "", "verify", "--api-url", a.HTTPURL())
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, `note: source "guard,rails" holds a comma`) {
		t.Errorf("no note on the comma source:\n%s", r.out)
	}
}
