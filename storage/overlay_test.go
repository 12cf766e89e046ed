package storage_test

import (
	"testing"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

func TestOverlayShowsTheResultBeingApplied(t *testing.T) {
	stored := &incident.Incident{ID: "a0", Fingerprint: "fa", Version: 3}
	snap := storage.Snapshot{Latest: map[string]*incident.Incident{"fa": stored}}
	res := dedupe.Result{
		Incidents: []*incident.Incident{
			{ID: "a0", Fingerprint: "fa", Version: 4}, // resolved by timeout...
			{ID: "b1", Fingerprint: "fb", Version: 1}, // not asked for
			{ID: "a1", Fingerprint: "fa", Version: 1}, // ...and the next one opened
		},
		EventIDs: []string{"e1", "e2"},
	}
	storage.Overlay(&snap, res, map[string]struct{}{"fa": {}, "fc": {}}, []string{"e1", "e9"})
	if got := snap.Latest["fa"]; got == nil || got.ID != "a1" {
		t.Errorf("latest of fa = %+v, want a1 (the last of res)", got)
	}
	if _, ok := snap.Latest["fb"]; ok {
		t.Error("fb was not looked up but is in the snapshot")
	}
	if len(snap.Latest) != 1 {
		t.Errorf("latest = %v, want only fa", snap.Latest)
	}
	if !snap.Applied["e1"] || snap.Applied["e2"] || snap.Applied["e9"] {
		t.Errorf("applied = %v, want only e1 (e2 was not looked up, e9 not applied)", snap.Applied)
	}
	if stored.Version != 3 {
		t.Error("the stored incident was changed")
	}
}

func TestOverlayOnAnEmptySnapshot(t *testing.T) {
	var snap storage.Snapshot
	storage.Overlay(&snap, dedupe.Result{}, nil, nil)
	if snap.Latest == nil || snap.Applied == nil {
		t.Fatal("Overlay left nil maps")
	}
}
