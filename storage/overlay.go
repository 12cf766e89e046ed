package storage

import (
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// Overlay makes snap what the store will hold once res is applied: the
// newest incident of each fingerprint res touched (the last one in res for
// that fingerprint) and res's event ids as applied. fps and ids are what
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
