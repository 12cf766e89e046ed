package incident

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestViewHasEveryKey: the view's JSON carries every key of the stored
// incident's JSON, unset ones as null ([] and {} for resources and
// labels), and decodes back into the same incident.
func TestViewHasEveryKey(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sparse := &Incident{ID: "i", Fingerprint: "v1:00", Title: "t", Source: "s", State: Detected,
		FirstSeen: at, LastSeen: at, CreatedAt: at, UpdatedAt: at, OccurrenceCount: 1, LatestEventAt: at, LatestEventID: "e", Version: 1}
	b, err := json.Marshal(NewView(sparse))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// Every key the full incident's JSON has.
	v, one := 1.5, at.Add(time.Minute)
	full := *sparse
	full.DedupKey, full.Description, full.ReopenOf, full.Unit, full.ResolvedBy = "k", "d", "r", "ms", ResolvedByEvent
	full.ResolvedAt, full.AcknowledgedAt, full.LastValue, full.LateCount = &one, &one, &v, 2
	full.Resources, full.Labels = []string{"a"}, map[string]string{"x": "y"}
	fb, _ := json.Marshal(&full)
	var keys map[string]any
	_ = json.Unmarshal(fb, &keys)
	for k := range keys {
		if _, ok := got[k]; !ok {
			t.Errorf("key %q missing from the view of a sparse incident: %s", k, b)
		}
	}
	for _, k := range []string{"dedup_key", "description", "reopen_of", "resolved_at", "resolved_by", "acknowledged_at", "last_value", "unit"} {
		if got[k] != nil {
			t.Errorf("%s = %v, want null", k, got[k])
		}
	}
	if r, ok := got["resources"].([]any); !ok || len(r) != 0 {
		t.Errorf("resources = %v, want []", got["resources"])
	}
	if l, ok := got["labels"].(map[string]any); !ok || len(l) != 0 {
		t.Errorf("labels = %v, want {}", got["labels"])
	}
	// Both decode back to the incident they show.
	for _, in := range []*Incident{sparse, &full} {
		b, _ := json.Marshal(NewView(in))
		var back Incident
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		want := *in
		if want.Resources == nil {
			want.Resources = []string{}
		}
		if want.Labels == nil {
			want.Labels = map[string]string{}
		}
		if !reflect.DeepEqual(&back, &want) {
			t.Errorf("round trip:\n%+v\nwant\n%+v", back, want)
		}
	}
}
