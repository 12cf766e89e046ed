package consumer_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
)

// entry is one published message of a logical log.
type entry struct {
	payload []byte
	reason  incident.Reason // "" for valid input
}

// badPayloads makes one payload per decode failure reason.
var badPayloads = []struct {
	reason  incident.Reason
	payload func(i int) []byte
}{
	{incident.ReasonInvalidJSON, func(i int) []byte { return fmt.Appendf(nil, `{"id":"bad-%d","source":`, i) }},
	{incident.ReasonInvalidUTF8, func(i int) []byte { return fmt.Appendf(nil, "{\"id\":\"bad-%d\",\"source\":\"\xff\xfe\"}", i) }},
	{incident.ReasonTooLarge, func(i int) []byte {
		return fmt.Appendf(nil, `{"id":"bad-%d","source":"s","title":"t","description":"%s"}`, i, strings.Repeat("x", 70*1024))
	}},
	{incident.ReasonMissingField, func(i int) []byte { return fmt.Appendf(nil, `{"id":"bad-%d","title":"no source"}`, i) }},
	{incident.ReasonInvalidField, func(i int) []byte {
		return fmt.Appendf(nil, `{"id":"bad-%d","source":"s","title":"t","severity":"P9"}`, i)
	}},
	{incident.ReasonInvalidField, func(i int) []byte { // beyond consumer.max_clock_skew
		return fmt.Appendf(nil, `{"id":"bad-%d","source":"s","title":"t","occurred_at":"9999-01-01T00:00:00Z"}`, i)
	}},
	{incident.ReasonUnknownAction, func(i int) []byte {
		return fmt.Appendf(nil, `{"id":"bad-%d","source":"s","title":"t","action":"explode"}`, i)
	}},
}

// logicalLog makes n messages: loadgen events with 30 % duplicates (half
// repeating an event id, half new events of an existing identity), 4 % acks
// and 4 % resolves when control is set, and badShare bad input spread over
// every reason.
//
// Acks and resolves are order-sensitive (a resolve applied after a later
// trigger of its identity closes the newer incident), so tests that cause
// redelivery, and with it reordering, use triggers only: their fold is
// order-insensitive and the expectation stays exact.
func logicalLog(n int, badShare float64, control bool, seed uint64) []entry {
	cfg := loadgen.Config{Seed: seed, DuplicateRatio: 0.3}
	if control {
		cfg.AckRatio, cfg.ResolveRatio = 0.04, 0.04
	}
	g := loadgen.New(cfg)
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]entry, 0, n)
	bad := 0
	for len(out) < n {
		if rng.Float64() < badShare {
			b := badPayloads[bad%len(badPayloads)]
			out = append(out, entry{payload: b.payload(bad), reason: b.reason})
			bad++
			continue
		}
		out = append(out, entry{payload: loadgen.Marshal(g.Next())})
	}
	return out
}

func payloads(log []entry) [][]byte {
	out := make([][]byte, len(log))
	for i, e := range log {
		out[i] = e.payload
	}
	return out
}

// expectation is what a correct worker must end with, computed without the
// worker: decode every valid payload (the wire contract), fold them in
// publish order against a plain map in one pass.
type expectation struct {
	incidents []*incident.Incident
	stats     dedupe.Stats
	uniqueIDs int
	valid     int
	bad       map[incident.Reason]int
}

func expect(t *testing.T, log []entry, dd config.DedupeConfig) expectation {
	t.Helper()
	fp, err := dedupe.NewFingerprinter(dd.Fields, dd.SourceFields)
	if err != nil {
		t.Fatal(err)
	}
	dec := incident.NewDecoder(0)
	ex := expectation{bad: map[incident.Reason]int{}}
	var keyed []dedupe.Keyed
	ids := map[string]bool{}
	for i, e := range log {
		if e.reason != "" {
			ex.bad[e.reason]++
			continue
		}
		ev, err := dec.Decode(e.payload, incident.Meta{Stream: "INCIDENTS", Sequence: uint64(i + 1), Timestamp: time.Now()})
		if err != nil {
			t.Fatalf("valid payload %d rejected: %v", i, err)
		}
		ex.valid++
		ids[ev.ID] = true
		keyed = append(keyed, dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)})
	}
	ex.uniqueIDs = len(ids)
	n := 0
	folder := dedupe.NewFolder(dd.Window.Duration, func() string { n++; return fmt.Sprintf("x%d", n) })
	res := folder.Fold(map[string]*incident.Incident{}, map[string]bool{}, keyed, time.Now())
	ex.incidents, ex.stats = res.Incidents, res.Stats
	return ex
}

// view is the part of an incident that does not depend on batching, ids or
// wall-clock time.
type view struct {
	Fingerprint, Title, Source, Unit, DedupKey, LatestEventID string
	Type                                                      incident.Type
	Severity, PeakSeverity                                    incident.Severity
	State                                                     incident.State
	Resources                                                 string
	Labels                                                    string
	FirstSeen, LastSeen                                       time.Time
	OccurrenceCount, LateCount                                int64
	Reopen                                                    bool
	ResolvedAt, AcknowledgedAt                                string
	ResolvedBy                                                incident.ResolvedBy
	LastValue                                                 string
}

func viewOf(in *incident.Incident) view {
	tp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	lv := ""
	if in.LastValue != nil {
		lv = fmt.Sprint(*in.LastValue)
	}
	labels := slices.Sorted(maps.Keys(in.Labels))
	var lb bytes.Buffer
	for _, k := range labels {
		fmt.Fprintf(&lb, "%s=%s;", k, in.Labels[k])
	}
	return view{Fingerprint: in.Fingerprint, Title: in.Title, Source: in.Source, Unit: in.Unit, DedupKey: in.DedupKey,
		LatestEventID: in.LatestEventID, Type: in.Type, Severity: in.Severity, PeakSeverity: in.PeakSeverity,
		State: in.State, Resources: strings.Join(in.Resources, ","), Labels: lb.String(),
		FirstSeen: in.FirstSeen.UTC(), LastSeen: in.LastSeen.UTC(), OccurrenceCount: in.OccurrenceCount,
		LateCount: in.LateCount, Reopen: in.ReopenOf != "", ResolvedAt: tp(in.ResolvedAt),
		AcknowledgedAt: tp(in.AcknowledgedAt), ResolvedBy: in.ResolvedBy, LastValue: lv}
}

func viewKey(v view) string { return v.Fingerprint + "|" + v.FirstSeen.Format(time.RFC3339Nano) }

// requireIncidents compares the store's incidents with the expectation,
// field by field, keyed by identity and first_seen.
func requireIncidents(t *testing.T, s storage.Store, ex expectation) {
	t.Helper()
	got, err := s.List(context.Background(), storage.Filter{}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ex.incidents) {
		t.Fatalf("store holds %d incidents, want %d", len(got), len(ex.incidents))
	}
	want := map[string]view{}
	for _, in := range ex.incidents {
		v := viewOf(in)
		want[viewKey(v)] = v
	}
	for _, in := range got {
		v := viewOf(in)
		w, ok := want[viewKey(v)]
		if !ok {
			t.Fatalf("unexpected incident %+v", v)
		}
		if v != w {
			t.Fatalf("incident %s:\n got %+v\nwant %+v", in.ID, v, w)
		}
	}
	n, err := s.Count(context.Background(), storage.Filter{})
	if err != nil || n != int64(len(ex.incidents)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(ex.incidents))
	}
}
