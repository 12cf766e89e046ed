package incident_test

import (
	"testing"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// TestEmptyDedupKeyIsAbsent: "dedup_key":"" is the same as no dedup_key:
// the identity comes from the fingerprint fields, as README's event format
// says.
func TestEmptyDedupKeyIsAbsent(t *testing.T) {
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := incident.NewDecoder(0)
	meta := incident.Meta{MsgID: "m-1"}
	fingerprint := func(payload string) string {
		t.Helper()
		ev, err := dec.Decode([]byte(payload), meta)
		if err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		return fp.Fingerprint(&ev)
	}
	const fields = `"source":"s","type":"Data","title":"t","resources":["r"],"occurred_at":"2026-03-01T10:00:00Z"`
	empty, absent := fingerprint(`{"dedup_key":"",`+fields+`}`), fingerprint(`{`+fields+`}`)
	if empty != absent {
		t.Errorf(`"dedup_key":"" gives %s, no dedup_key %s: want the same identity`, empty, absent)
	}
	if keyed := fingerprint(`{"dedup_key":"k",` + fields + `}`); keyed == absent {
		t.Errorf("a dedup_key does not change the identity (%s)", keyed)
	}
}
