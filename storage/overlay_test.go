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

// TestOverlayKeepsANewerIncident: batch N is a late merge into the
// resolved a0 while another pod has reopened the identity as a1; N+1's
// Lookup read a1. The update of a0 does not move the identity (Apply
// leaves the pointer on a1), so the overlay must not hide a1: N+1's
// resolve or acknowledge would otherwise fold against a0 and be lost as
// an orphan.
func TestOverlayKeepsANewerIncident(t *testing.T) {
	reopened := &incident.Incident{ID: "a1", Fingerprint: "fa", Version: 1, ReopenOf: "a0"}
	snap := storage.Snapshot{Latest: map[string]*incident.Incident{"fa": reopened}}
	res := dedupe.Result{Incidents: []*incident.Incident{{ID: "a0", Fingerprint: "fa", Version: 5}}}
	storage.Overlay(&snap, res, map[string]struct{}{"fa": {}}, nil)
	if got := snap.Latest["fa"]; got != reopened {
		t.Fatalf("latest of fa = %+v, want the reopen a1 the Lookup read", got)
	}
	// With nothing newer read, the update shows, as before.
	snap = storage.Snapshot{Latest: map[string]*incident.Incident{"fa": {ID: "a0", Fingerprint: "fa", Version: 4}}}
	storage.Overlay(&snap, res, map[string]struct{}{"fa": {}}, nil)
	if got := snap.Latest["fa"]; got.Version != 5 {
		t.Fatalf("latest of fa = %+v, want the update at version 5", got)
	}
}
