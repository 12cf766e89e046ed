package incident_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

var vt0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// validIncident is a resolved incident with most optional fields set.
func validIncident() *incident.Incident {
	res, ack, v := vt0.Add(20*time.Minute), vt0.Add(time.Minute), 12.5
	return &incident.Incident{
		ID: "inc-1", Fingerprint: "v1:0123456789abcdef0123456789abcdef", DedupKey: "k", Title: "High latency",
		Description: "line\nnext\ttab", Source: "llm-gateway", Type: incident.Performance, Severity: incident.P2,
		PeakSeverity: incident.P1, State: incident.Resolved, Resources: []string{"a", "b"},
		Labels:    map[string]string{"env": "prod", "empty": ""},
		FirstSeen: vt0, LastSeen: vt0.Add(5 * time.Minute), CreatedAt: vt0.Add(time.Second), UpdatedAt: vt0.Add(time.Hour),
		OccurrenceCount: 3, LateCount: 1, ReopenOf: "inc-0", ResolvedAt: &res, ResolvedBy: incident.ResolvedByTimeout,
		AcknowledgedAt: &ack, LastValue: &v, Unit: "ms", LatestEventAt: vt0.Add(5 * time.Minute), LatestEventID: "e-3", Version: 4,
	}
}

// problems returns the fields Validate names, in order.
func problems(t *testing.T, in *incident.Incident) []string {
	t.Helper()
	err := in.Validate()
	if err == nil {
		return nil
	}
	var ie *incident.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Validate returned %T %v, want *incident.InvalidError", err, err)
	}
	var fields []string
	for _, p := range ie.Problems {
		if !strings.Contains(err.Error(), p.Error()) {
			t.Fatalf("%q does not list %q", err, p)
		}
		var fe *incident.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("errors.As(%v, *FieldError) failed", err)
		}
		fields = append(fields, p.Field)
	}
	return fields
}

func TestValidateAcceptsValid(t *testing.T) {
	if err := validIncident().Validate(); err != nil {
		t.Fatal(err)
	}
	// An active incident without the resolution, with nothing optional.
	in := storetest.SparseIncident("inc-2", "v1:00000000000000000000000000000000")
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	// Closed needs the resolution too; operator is a valid resolved_by.
	c := validIncident()
	c.State, c.ResolvedBy = incident.Closed, incident.ResolvedByOperator
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The most severe peak is the severity itself; a resolution before
	// first_seen is what an out-of-order resolve event leaves.
	c = validIncident()
	c.PeakSeverity, c.Severity = incident.P4, incident.P4
	early := vt0.Add(-time.Hour)
	c.ResolvedAt = &early
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateTable(t *testing.T) {
	zero := time.Time{}
	nan := math.NaN()
	cases := []struct {
		name   string
		change func(in *incident.Incident)
		want   []string // the fields named, in order
		msg    string   // a part of the message
	}{
		{"empty", func(in *incident.Incident) { *in = incident.Incident{} },
			[]string{"id", "fingerprint", "title", "source", "first_seen", "last_seen", "created_at", "updated_at", "occurrence_count", "version"}, "id: empty; fingerprint: empty"},
		{"blank title", func(in *incident.Incident) { in.Title = "  " }, []string{"title"}, "title: blank"},
		{"blank source", func(in *incident.Incident) { in.Source = "\t" }, []string{"source"}, "source: blank"},
		{"control character in id", func(in *incident.Incident) { in.ID = "a\x01b" }, []string{"id"}, "control character 0x01"},
		{"title too long", func(in *incident.Incident) { in.Title = strings.Repeat("x", incident.MaxTitleBytes+1) }, []string{"title"}, "at most 1024"},
		{"source too long", func(in *incident.Incident) { in.Source = strings.Repeat("x", incident.MaxSourceBytes+1) }, []string{"source"}, "at most 255"},
		{"id too long", func(in *incident.Incident) { in.ID = strings.Repeat("x", incident.MaxIDBytes+1) }, []string{"id"}, "at most 255"},
		{"invalid UTF-8", func(in *incident.Incident) { in.Description = "a\xffb" }, []string{"description"}, "UTF-8"},
		{"newline in title", func(in *incident.Incident) { in.Title = "a\nb" }, []string{"title"}, "control character 0x0a"},
		{"dedup_key too long", func(in *incident.Incident) { in.DedupKey = strings.Repeat("k", 256) }, []string{"dedup_key"}, ""},
		{"unit too long", func(in *incident.Incident) { in.Unit = strings.Repeat("u", 65) }, []string{"unit"}, ""},
		{"unknown type", func(in *incident.Incident) { in.Type = 8 }, []string{"type"}, "unknown type 8"},
		{"unknown severity", func(in *incident.Incident) { in.Severity = 5 }, []string{"severity"}, "unknown severity 5"},
		{"unknown peak", func(in *incident.Incident) { in.PeakSeverity = 9 }, []string{"peak_severity"}, ""},
		{"peak less severe", func(in *incident.Incident) { in.PeakSeverity = incident.P3 }, []string{"peak_severity"}, "P3 is less severe than severity P2"},
		{"unknown state", func(in *incident.Incident) { in.State = 6 }, []string{"state"}, "unknown state 6"},
		{"empty resource", func(in *incident.Incident) { in.Resources = []string{"a", ""} }, []string{"resources[1]"}, "empty resource name"},
		{"unsorted resources", func(in *incident.Incident) { in.Resources = []string{"b", "a"} }, []string{"resources[1]"}, "not sorted and unique"},
		{"repeated resource", func(in *incident.Incident) { in.Resources = []string{"a", "a"} }, []string{"resources[1]"}, "not sorted and unique"},
		{"too many labels", func(in *incident.Incident) {
			in.Labels = map[string]string{}
			for i := range incident.MaxLabels + 1 {
				in.Labels[fmt.Sprint(i)] = "v"
			}
		}, []string{"labels"}, "65 labels, at most 64"},
		{"empty label name", func(in *incident.Incident) { in.Labels = map[string]string{"": "v"} }, []string{"labels"}, "empty label name"},
		{"two bad label values, in name order", func(in *incident.Incident) { in.Labels = map[string]string{"b": "\x00", "a": "\x01", "c": "ok"} },
			[]string{"labels.a", "labels.b"}, "labels.a: control character 0x01 at byte 0; labels.b: control character 0x00"},
		{"label value with a control character", func(in *incident.Incident) { in.Labels = map[string]string{"k": "a\x00"} }, []string{"labels.k"}, ""},
		{"zero first_seen", func(in *incident.Incident) { in.FirstSeen = zero }, []string{"first_seen"}, "missing"},
		{"zero updated_at", func(in *incident.Incident) { in.UpdatedAt = zero }, []string{"updated_at"}, "missing"},
		{"year 1969", func(in *incident.Incident) { in.CreatedAt = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }, []string{"created_at"}, "year 1969 out of range 1970..9999"},
		{"last before first", func(in *incident.Incident) { in.LastSeen = in.FirstSeen.Add(-time.Second) }, []string{"last_seen"}, "before first_seen"},
		{"occurrence_count 0", func(in *incident.Incident) { in.OccurrenceCount, in.LateCount = 0, 0 }, []string{"occurrence_count"}, "at least 1"},
		{"negative late_count", func(in *incident.Incident) { in.LateCount = -1 }, []string{"late_count"}, ""},
		{"all late", func(in *incident.Incident) { in.LateCount = in.OccurrenceCount }, []string{"late_count"}, "less than occurrence_count 3"},
		{"version 0", func(in *incident.Incident) { in.Version = 0 }, []string{"version"}, "version: 0, must be at least 1"},
		{"reopens itself", func(in *incident.Incident) { in.ReopenOf = in.ID }, []string{"reopen_of"}, "itself"},
		{"resolved without resolved_at", func(in *incident.Incident) { in.ResolvedAt = nil }, []string{"resolved_at"}, "missing: the state is Resolved"},
		{"resolved without resolved_by", func(in *incident.Incident) { in.ResolvedBy = "" }, []string{"resolved_by"}, "missing"},
		{"closed without resolution", func(in *incident.Incident) { in.State, in.ResolvedAt, in.ResolvedBy = incident.Closed, nil, "" },
			[]string{"resolved_at", "resolved_by"}, "the state is Closed"},
		{"active with resolution", func(in *incident.Incident) { in.State = incident.Investigating },
			[]string{"resolved_at", "resolved_by"}, "set, but the state is Investigating"},
		{"unknown resolved_by", func(in *incident.Incident) { in.ResolvedBy = "magic" }, []string{"resolved_by"}, `unknown value "magic"`},
		{"zero resolved_at", func(in *incident.Incident) { in.ResolvedAt = &zero }, []string{"resolved_at"}, "zero time"},
		{"zero acknowledged_at", func(in *incident.Incident) { in.AcknowledgedAt = &zero }, []string{"acknowledged_at"}, "missing"},
		{"NaN last_value", func(in *incident.Incident) { in.LastValue = &nan }, []string{"last_value"}, "finite"},
		{"latest_event_at out of range", func(in *incident.Incident) { in.LatestEventAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"latest_event_at"}, "year 10000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := validIncident()
			c.change(in)
			got := problems(t, in)
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("problems in %v, want %v: %v", got, c.want, in.Validate())
			}
			if !strings.Contains(in.Validate().Error(), c.msg) {
				t.Fatalf("%q does not say %q", in.Validate(), c.msg)
			}
		})
	}
	if err := (*incident.Incident)(nil).Validate(); err == nil {
		t.Fatal("a nil incident validates")
	}
}

// A valid incident is checked without allocating.
func TestValidateDoesNotAllocate(t *testing.T) {
	in := validIncident()
	if n := testing.AllocsPerRun(100, func() { _ = in.Validate() }); n != 0 {
		t.Fatalf("%v allocations per Validate of a valid incident", n)
	}
}

// The rules must never reject what the worker writes: every incident the
// worker's write path (storage.Ingest with the fold, and the quiet-period
// sweep storage.ExpireQuiet) leaves in a store validates, for loadgen streams
// with acknowledges, resolves, duplicates and short quiet periods (so
// timeouts, reopens and late triggers happen).
func TestValidateAcceptsWhatTheWorkerWrites(t *testing.T) {
	ctx := context.Background()
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen dedupe.Stats
	for seed := uint64(1); seed <= 6; seed++ {
		s := memory.New()
		window := time.Duration(seed) * 40 * time.Millisecond
		folder := dedupe.NewFolder(window, storetest.NewIDs(fmt.Sprintf("s%d", seed)))
		g := loadgen.New(loadgen.Config{Seed: seed, DuplicateRatio: 0.3, AckRatio: 0.08, ResolveRatio: 0.08,
			Start: storetest.Base, Step: time.Millisecond, IDPrefix: fmt.Sprintf("s%d", seed)})
		clock := storetest.Base
		now := func() time.Time { return clock }
		for b := 0; b < 60; b++ {
			batch := make([]dedupe.Keyed, 50)
			for i := range batch {
				ev := g.Next()
				batch[i] = dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)}
			}
			clock = batch[len(batch)-1].Event.OccurredAt.Add(time.Millisecond)
			res, _, err := storage.Ingest(ctx, s, folder, batch, now)
			if err != nil {
				t.Fatal(err)
			}
			seen.Add(res.Stats)
			for _, in := range res.Incidents {
				if err := in.Validate(); err != nil {
					t.Fatalf("seed %d: the fold wrote %s v%d: %v", seed, in.ID, in.Version, err)
				}
			}
			if b%7 == 3 {
				n, err := storage.ExpireQuiet(ctx, s, folder, clock.Add(window/2), 1000)
				if err != nil {
					t.Fatal(err)
				}
				seen.TimedOut += n
			}
		}
		// The sweep at the end resolves every open incident by timeout.
		if _, err := storage.ExpireQuiet(ctx, s, folder, clock.Add(time.Hour), 0); err != nil {
			t.Fatal(err)
		}
		all, err := s.List(ctx, storage.Filter{}, storage.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range all {
			if err := in.Validate(); err != nil {
				t.Fatalf("seed %d: stored %s: %v", seed, in.ID, err)
			}
		}
		_ = s.Close()
	}
	t.Logf("fold statistics: %+v", seen)
	if seen.TimedOut == 0 || seen.Late == 0 || seen.Reopened == 0 || seen.Acknowledged == 0 || seen.Resolved == 0 || seen.Merged == 0 {
		t.Fatalf("rules not exercised: %+v", seen)
	}

	// The conformance suite's realistic log, folded in one go.
	for _, window := range []time.Duration{storetest.RealisticWindow, dedupe.DefaultWindow} {
		for _, in := range storetest.FoldAllWindow(storetest.RealisticEvents(5000, 3), window) {
			if err := in.Validate(); err != nil {
				t.Fatalf("realistic fold (window %v): %s: %v", window, in.ID, err)
			}
		}
	}
}

// The storetest fixtures built by hand, not by the fold: the sparse
// incident validates; FullIncident (active, yet with resolved_at/by, to
// exercise every field of the codecs) and Population (random states, no
// resolution) break only the resolution rule, which the fold never does.
func TestValidateStoretestFixtures(t *testing.T) {
	if err := storetest.SparseIncident("a", "v1:00000000000000000000000000000000").Validate(); err != nil {
		t.Fatal(err)
	}
	fixtures := append(storetest.FullPair("full", "v1:11111111111111111111111111111111"), storetest.Population(200, 5)...)
	broken := 0
	for _, in := range fixtures {
		for _, f := range problems(t, in) {
			if f != "resolved_at" && f != "resolved_by" {
				t.Errorf("fixture %s: %v", in.ID, in.Validate())
			}
		}
		// With the resolution made consistent with the state, it validates.
		c := in.Clone()
		if c.State == incident.Resolved || c.State == incident.Closed {
			at := c.LastSeen
			c.ResolvedAt, c.ResolvedBy = &at, incident.ResolvedByEvent
		} else {
			c.ResolvedAt, c.ResolvedBy = nil, ""
		}
		if err := c.Validate(); err != nil {
			t.Errorf("fixture %s with a consistent resolution: %v", c.ID, err)
		}
		if in.Validate() != nil {
			broken++
		}
	}
	if broken == 0 {
		t.Fatal("the fixtures all validate now: tighten this test")
	}
}
