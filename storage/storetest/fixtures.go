package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Base is the time every fixture starts from (microsecond precision, UTC).
var Base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// At returns Base plus us microseconds.
func At(us int64) time.Time { return Base.Add(time.Duration(us) * time.Microsecond) }

// NewIDs returns a deterministic id generator, safe for concurrent use:
// prefix-000001, prefix-000002, … (zero-padded so ids sort in creation
// order). Pass it to dedupe.NewFolder.
func NewIDs(prefix string) func() string {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("%s-%06d", prefix, n.Add(1)) }
}

// FullIncident returns an incident with every field set (pointers, labels,
// resources, dedup key, reopen_of, resolved_at/by, acknowledged_at,
// last_value/unit, late_count), times with microsecond precision, Version 1
// and an active state. It reopens id+"-previous": see FullPair.
func FullIncident(id, fingerprint string) *incident.Incident {
	ack, res, v := At(2_000_007), At(3_000_011), 1234.5625
	return &incident.Incident{
		ID:                 id,
		Fingerprint:        fingerprint,
		DedupKey:           "gateway/tenant-0042/gpt-4o",
		Title:              `High P95 latency on "gpt-4o" — ünïcödé ✓`,
		Description:        "line one\nline two\ttabbed, with \\ and \" inside",
		Source:             "llm-gateway",
		Type:               incident.Performance,
		Severity:           incident.P1,
		PeakSeverity:       incident.P0,
		State:              incident.Investigating,
		Resources:          []string{"deployment/gw-eu", "model/gpt-4o", "region/eu-west-1"},
		Labels:             map[string]string{"env": "prod", "model": "gpt-4o", "tenant": "tenant-0042", "empty": ""},
		FirstSeen:          At(1_000_001),
		LastSeen:           At(4_000_003),
		CreatedAt:          At(1_500_005),
		UpdatedAt:          At(4_500_009),
		OccurrenceCount:    17,
		LateCount:          3,
		ReopenOf:           id + "-previous",
		ResolvedAt:         &res,
		ResolvedBy:         incident.ResolvedByTimeout,
		AcknowledgedAt:     &ack,
		LastValue:          &v,
		Unit:               "ms",
		LatestEventAt:      At(4_000_003),
		LatestEventID:      "ev-latest-0017",
		FirstReceivedAt:    At(1_000_017),
		ResolvedReceivedAt: At(4_600_001),
		LastReceivedAt:     At(4_000_019),
		Version:            1,
	}
}

// FullPair returns the incident FullIncident(id, fingerprint) reopens (a
// resolved sparse one with id+"-previous") and then that incident: write
// them in this order.
func FullPair(id, fingerprint string) []*incident.Incident {
	full := FullIncident(id, fingerprint)
	prev := SparseIncident(full.ReopenOf, fingerprint)
	prev.State = incident.Resolved
	return []*incident.Incident{prev, full}
}

// SparseIncident returns an incident with every optional field empty.
func SparseIncident(id, fingerprint string) *incident.Incident {
	return &incident.Incident{
		ID: id, Fingerprint: fingerprint, Title: "t", Source: "s", Severity: incident.P4, PeakSeverity: incident.P4,
		FirstSeen: At(1), LastSeen: At(1), CreatedAt: At(2), UpdatedAt: At(2), OccurrenceCount: 1,
		LatestEventAt: At(1), LatestEventID: "e", Version: 1,
	}
}

// Sources are the sources Population draws from; one holds a colon, a slash
// and a space, as source names may.
var Sources = []string{"llm-gateway", "llm-evaluator", "guardrails", "team a/guardrails:eu"}

// Population returns n varied incidents (Version 1) for filter and order
// tests: every state, severity and type, the Sources, 3 incidents per
// fingerprint (only the last of a fingerprint may be active, as the fold
// leaves them), and last_seen values that tie so the id tiebreak matters.
// The same seed gives the same incidents.
func Population(n int, seed uint64) []*incident.Incident {
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	nfp := (n + 2) / 3
	out := make([]*incident.Incident, n)
	for i := range out {
		in := SparseIncident(fmt.Sprintf("inc-%03d", i), fmt.Sprintf("v1:%032x", i%nfp))
		in.State = incident.States[rng.IntN(len(incident.States))]
		in.Severity = incident.Severities[rng.IntN(len(incident.Severities))]
		in.PeakSeverity = in.Severity
		in.Type = incident.Types[rng.IntN(len(incident.Types))]
		in.Source = Sources[rng.IntN(len(Sources))]
		in.LastSeen = At(int64(rng.IntN(n/2+1)) * 1_000_001) // about two per distinct time
		in.FirstSeen = in.LastSeen.Add(-time.Minute)
		in.Title = fmt.Sprintf("incident %d", i)
		out[i] = in
	}
	// Incidents earlier in the slice are older members of their identity,
	// reopened by the next one.
	for i := range out[:n-nfp] {
		if out[i].State.Active() {
			out[i].State = incident.Resolved
		}
		out[i+nfp].ReopenOf = out[i].ID
	}
	return out
}

// Put writes incidents as they are (their Version must follow the stored
// one), one Apply per incident, each with a fresh event id, and fails the
// test on error.
func Put(t testing.TB, s storage.Store, ins ...*incident.Incident) {
	t.Helper()
	for _, in := range ins {
		b := storage.Batch{Incidents: []*incident.Incident{in}, EventIDs: []string{fmt.Sprintf("put:%s:v%d", in.ID, in.Version)}, At: Base}
		if err := s.Apply(context.Background(), b); err != nil {
			t.Fatalf("apply %s v%d: %v", in.ID, in.Version, err)
		}
	}
}

// Update returns a copy of in with Version bumped and UpdatedAt moved on,
// for writing over the stored in.
func Update(in *incident.Incident, change func(*incident.Incident)) *incident.Incident {
	c := in.Clone()
	c.Version++
	c.UpdatedAt = c.UpdatedAt.Add(time.Second)
	change(c)
	return c
}

// Fingerprinter is the default-field fingerprinter the event helpers use.
var Fingerprinter = func() *dedupe.Fingerprinter {
	f, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		panic(err)
	}
	return f
}()

// Key fingerprints events with Fingerprinter.
func Key(evs ...incident.Event) []dedupe.Keyed {
	out := make([]dedupe.Keyed, len(evs))
	for i := range evs {
		out[i] = dedupe.Keyed{Event: evs[i], Fingerprint: Fingerprinter.Fingerprint(&evs[i])}
	}
	return out
}

// Trigger returns a trigger event of the identity named by key (its
// dedup_key) at Base plus us microseconds.
func Trigger(id, key string, us int64, sev incident.Severity) incident.Event {
	v := float64(us)
	return incident.Event{ID: id, Action: incident.Trigger, DedupKey: key, Source: "llm-gateway", Type: incident.Performance,
		Severity: sev, Title: "latency on " + key, Resources: []string{"model/" + key}, Labels: map[string]string{"key": key},
		OccurredAt: At(us), Value: &v, Unit: "ms"}
}

// Control returns an acknowledge or resolve event of the identity key.
func Control(id, key string, a incident.Action, us int64) incident.Event {
	return incident.Event{ID: id, Action: a, DedupKey: key, Source: "llm-gateway", Type: incident.Performance, OccurredAt: At(us)}
}

// IngestAll runs storage.Ingest over events in batches of size batch,
// failing the test on error, and returns the summed fold statistics.
func IngestAll(t testing.TB, s storage.Store, f *dedupe.Folder, events []dedupe.Keyed, batch int) dedupe.Stats {
	t.Helper()
	var st dedupe.Stats
	for lo := 0; lo < len(events); lo += batch {
		hi := min(lo+batch, len(events))
		res, _, err := storage.Ingest(context.Background(), s, f, events[lo:hi], func() time.Time { return Base })
		if err != nil {
			t.Fatalf("ingest events %d..%d: %v", lo, hi, err)
		}
		st.Add(res.Stats)
	}
	return st
}
