package storage

import (
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// Overlay makes snap what the store will hold once res is applied: for
// each fingerprint res touched, its incident in res (a new one, or an
// update of the incident snap names; an update of an older incident, when
// another writer has reopened the identity since, leaves snap's newer one,
// as Apply leaves the pointer on it) and res's event ids as applied. fps and ids are what
// snap was looked up for. A pipelined writer (the worker) reads and folds
// batch N+1 while batch N is being applied, on snap overlaid with N's
// result; Fold copies what it changes, so res stays N's to write.
func Overlay(snap *Snapshot, res dedupe.Result, fps map[string]struct{}, ids []string) {
	if snap.Latest == nil {
		snap.Latest = map[string]*incident.Incident{}
	}
	if snap.Applied == nil {
		snap.Applied = map[string]bool{}
	}
	for _, in := range res.Incidents {
		if _, ok := fps[in.Fingerprint]; ok {
			// An update never moves the identity: when the store already
			// names another (newer) incident, keep what it read.
			if cur := snap.Latest[in.Fingerprint]; in.Version != 1 && cur != nil && cur.ID != in.ID {
				continue
			}
			snap.Latest[in.Fingerprint] = in
		}
	}
	if len(res.EventIDs) == 0 {
		return
	}
	mine := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		mine[id] = struct{}{}
	}
	for _, id := range res.EventIDs {
		if _, ok := mine[id]; ok {
			snap.Applied[id] = true
		}
	}
}
