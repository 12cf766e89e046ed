package memory

import (
	"context"
	"testing"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestIndexSetsHoldOnlyCurrentValues checks the index sets themselves, not
// just query results (List re-checks each candidate with Filter.Match, which
// would hide a stale membership): after updates, reopens and deletes every
// set holds exactly the incidents whose current value it is keyed by.
func TestIndexSetsHoldOnlyCurrentValues(t *testing.T) {
	ctx := context.Background()
	s := New()
	storetest.IngestAll(t, s, dedupe.NewFolder(storetest.RealisticWindow, storetest.NewIDs("ix")), storetest.RealisticEvents(600, 3), 32)
	all := storetest.ListAll(t, s)
	for _, in := range all[:len(all)/5] {
		if err := s.Delete(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	want := newIndexes()
	for _, in := range s.byID {
		want.add(in)
	}
	check := func(name string, got, want int) {
		if got != want {
			t.Errorf("%s: %d members, want %d", name, got, want)
		}
	}
	check("all", len(s.idx.all), len(want.all))
	for _, st := range incident.States {
		check("state "+st.String(), len(s.idx.state[st]), len(want.state[st]))
	}
	for _, sv := range incident.Severities {
		check("severity "+sv.String(), len(s.idx.severity[sv]), len(want.severity[sv]))
	}
	for _, ty := range incident.Types {
		check("type "+ty.String(), len(s.idx.typ[ty]), len(want.typ[ty]))
	}
	check("sources", len(s.idx.source), len(want.source))
	for src, ids := range want.source {
		check("source "+src, len(s.idx.source[src]), len(ids))
	}
	check("fingerprints", len(s.idx.fingerprint), len(want.fingerprint))
	for fp, ids := range want.fingerprint {
		check("fingerprint "+fp, len(s.idx.fingerprint[fp]), len(ids))
	}
}
