package legacy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/legacy"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr(s string) *time.Time { t := at(s); return &t }

// fixture reads testdata/export.json, the old system's "Export to JSON"
// (serde_json::to_string_pretty of a Vec<Incident>), one raw record each.
func fixture(t *testing.T) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/export.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestConvertFixture: every record of the old export converts into a
// valid incident of ours, field by field as the README says, and its
// fingerprint is the one the worker gives a new event of that alert, so
// that the event merges into the migrated incident.
func TestConvertFixture(t *testing.T) {
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := func(id, created, updated string) incident.Incident {
		return incident.Incident{ID: id, CreatedAt: at(created), UpdatedAt: at(updated), FirstSeen: at(created),
			LastSeen: at(updated), OccurrenceCount: 1, Version: 1}
	}
	want := []incident.Incident{
		func() incident.Incident { // Detected: unsorted, repeated resources; labels; a 64-hex old fingerprint
			in := base("6f1c2a9e-5b7d-4c3e-9a11-0d2f4e6b8c01", "2024-05-02T09:15:00.123456789Z", "2024-05-02T09:20:30Z")
			in.FirstSeen = at("2024-05-02T09:15:00.123456Z") // an event time: to the microsecond
			in.Title, in.Source, in.Type = "P95 latency above 2s", "llm-gateway", incident.Performance
			in.Description = "p95 latency exceeded the threshold on gpt-4 routes"
			in.Severity, in.PeakSeverity, in.State = incident.P1, incident.P1, incident.Detected
			in.Resources, in.Labels = []string{"gw-1", "gw-2"}, map[string]string{"region": "eu-west-1", "model": "gpt-4"}
			return in
		}(),
		func() incident.Incident { // Triaged: acknowledged when the timeline says so; no resources, no labels
			in := base("0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d", "2024-05-01T22:00:00Z", "2024-05-01T22:45:12.5Z")
			in.Title, in.Source, in.Type = "Prompt injection attempts", "guardrails", incident.Security
			in.Severity, in.PeakSeverity, in.State = incident.P2, incident.P2, incident.Triaged
			in.Resources, in.AcknowledgedAt = []string{}, ptr("2024-05-01T22:05:00.25Z")
			return in
		}(),
		func() incident.Incident { // Resolved by hand: the resolution's time, "operator"
			in := base("c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f", "2024-04-30T10:00:00Z", "2024-04-30T11:30:00Z")
			in.Title, in.Source, in.Type = "Gateway down", "llm-gateway", incident.Availability
			in.Description = "all replicas failing health checks"
			in.Severity, in.PeakSeverity, in.State = incident.P0, incident.P0, incident.Resolved
			in.Resources, in.Labels = []string{"gw-1"}, map[string]string{"region": "us-east-1"}
			in.ResolvedAt, in.ResolvedBy = ptr("2024-04-30T11:29:59.999Z"), incident.ResolvedByOperator
			return in
		}(),
		func() incident.Incident { // Closed with no resolution: updated_at, "operator"
			in := base("d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f70", "2024-04-29T08:00:00Z", "2024-04-29T09:00:00Z")
			in.Title, in.Source, in.Type = "Eval drift on summarisation", "evaluator", incident.Data
			in.Severity, in.PeakSeverity, in.State = incident.P3, incident.P3, incident.Closed
			in.Resources = []string{}
			in.ResolvedAt, in.ResolvedBy = ptr("2024-04-29T09:00:00Z"), incident.ResolvedByOperator
			return in
		}(),
		func() incident.Incident { // Resolved, Automated: "event"
			in := base("e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7081", "2024-04-28T12:00:00Z", "2024-04-28T12:10:00Z")
			in.Title, in.Source, in.Type = "Nightly job slow", "batch-jobs", incident.Unknown
			in.Severity, in.PeakSeverity, in.State = incident.P4, incident.P4, incident.Resolved
			in.Resources = []string{"job-7"}
			in.ResolvedAt, in.ResolvedBy = ptr("2024-04-28T12:09:00Z"), incident.ResolvedByEvent
			return in
		}(),
	}
	recs := fixture(t)
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, raw := range recs {
		if !legacy.Is(raw) {
			t.Fatalf("record %d: Is = false", i)
		}
		old, err := legacy.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, probs := legacy.Convert(old, fp)
		if len(probs) > 0 {
			t.Fatalf("record %d: problems %v", i, probs)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		w := want[i]
		ev := incident.Event{Source: w.Source, Type: w.Type, Title: strings.ToUpper(w.Title),
			Resources: append([]string{}, w.Resources...), Labels: map[string]string{"other": "x"}}
		if w.Fingerprint = fp.Fingerprint(&ev); !dedupe.ValidFingerprint(w.Fingerprint) {
			t.Fatalf("fingerprint %q", w.Fingerprint)
		}
		if !reflect.DeepEqual(*got, w) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(w)
			t.Errorf("record %d:\n got %s\nwant %s", i, gj, wj)
		}
	}
}

// TestConvertDedupeFields: the fingerprint follows the configured fields
// (here a label), as the worker's does.
func TestConvertDedupeFields(t *testing.T) {
	fp, err := dedupe.NewFingerprinter([]string{"source", "labels.region"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := legacy.Decode(fixture(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := legacy.Convert(old, fp)
	ev := incident.Event{Source: "llm-gateway", Title: "anything", Labels: map[string]string{"region": "eu-west-1"}}
	if want := fp.Fingerprint(&ev); got.Fingerprint != want {
		t.Fatalf("fingerprint %s, want %s", got.Fingerprint, want)
	}
}

func TestConvertEdgeCases(t *testing.T) {
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]string, 0, incident.MaxIncidentResources+10)
	for i := range incident.MaxIncidentResources + 10 {
		many = append(many, fmt.Sprintf("r%05d", i))
	}
	for _, c := range []struct {
		name  string
		old   legacy.Incident
		check func(*testing.T, *incident.Incident, []*incident.FieldError)
	}{
		{"upper-case id", legacy.Incident{ID: "6F1C2A9E-5B7D-4C3E-9A11-0D2F4E6B8C01", State: "Detected", Severity: "P2", IncidentType: "Data"},
			func(t *testing.T, in *incident.Incident, _ []*incident.FieldError) {
				if in.ID != "6f1c2a9e-5b7d-4c3e-9a11-0d2f4e6b8c01" {
					t.Errorf("id %q", in.ID)
				}
			}},
		{"active with a resolution", legacy.Incident{State: "Investigating", Severity: "P2", IncidentType: "Data",
			Resolution: &legacy.Resolution{ResolvedAt: at("2024-01-01T00:00:00Z"), ResolutionMethod: "Manual"}},
			func(t *testing.T, in *incident.Incident, _ []*incident.FieldError) {
				if in.ResolvedAt != nil || in.ResolvedBy != "" || in.AcknowledgedAt != nil {
					t.Errorf("resolved_at %v, resolved_by %q, acknowledged_at %v", in.ResolvedAt, in.ResolvedBy, in.AcknowledgedAt)
				}
			}},
		{"Detected keeps no acknowledgement", legacy.Incident{State: "Detected", Severity: "P2", IncidentType: "Data",
			Timeline: []legacy.TimelineEvent{{Timestamp: at("2024-01-01T00:00:00Z"), EventType: "StateChanged", Metadata: map[string]string{"new_state": "Triaged"}}}},
			func(t *testing.T, in *incident.Incident, _ []*incident.FieldError) {
				if in.AcknowledgedAt != nil {
					t.Errorf("acknowledged_at %v", in.AcknowledgedAt)
				}
			}},
		{"resources capped, empty names dropped", legacy.Incident{State: "Detected", Severity: "P2", IncidentType: "Data", AffectedResources: append([]string{"", "r99999"}, many...)},
			func(t *testing.T, in *incident.Incident, _ []*incident.FieldError) {
				if len(in.Resources) != incident.MaxIncidentResources || in.Resources[0] != "r00000" || in.Resources[len(in.Resources)-1] != many[incident.MaxIncidentResources-1] {
					t.Errorf("%d resources, %q .. %q", len(in.Resources), in.Resources[0], in.Resources[len(in.Resources)-1])
				}
			}},
		{"unknown and missing values", legacy.Incident{State: "Paused", IncidentType: "Weather"},
			func(t *testing.T, _ *incident.Incident, probs []*incident.FieldError) {
				var got []string
				for _, p := range probs {
					got = append(got, p.Error())
				}
				want := []string{
					`type: from incident_type: unknown type "Weather" (want one of Unknown, Infrastructure, Application, Security, Data, Performance, Availability, Compliance)`,
					"severity: missing",
					`state: unknown state "Paused" (want one of Detected, Triaged, Investigating, Remediating, Resolved, Closed)`,
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("problems\n%q\nwant\n%q", got, want)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, probs := legacy.Convert(&c.old, fp)
			c.check(t, in, probs)
		})
	}
}

// TestIs: the old format is told apart by its own members, never by
// members a record of ours has too.
func TestIs(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{`{"id":"x","incident_type":"Data"}`, true},
		{`{"id":"x","affected_resources":[]}`, true},
		{`{"id":"x","timeline":[]}`, true},
		{`{"id":"x","type":"Data","resources":[],"peak_severity":"P1","version":1}`, false},
		{`{"id":"x","incident_type":"Data","peak_severity":"P1"}`, false},
		{`{"source":"gw","title":"t","severity":"P1"}`, false},
		{`[{"incident_type":"Data"}]`, false},
		{`"incident_type"`, false},
		{`null`, false},
		{`{"incident_type":`, false},
	} {
		if got := legacy.Is([]byte(c.raw)); got != c.want {
			t.Errorf("Is(%s) = %t, want %t", c.raw, got, c.want)
		}
	}
}
