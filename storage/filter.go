package storage

import (
	"slices"
	"strings"

	"github.com/llm-im/incidentd/incident"
)

// Match reports whether in satisfies f. Backends that cannot answer a filter
// from their indexes alone, and the conformance suite, use it.
func (f Filter) Match(in *incident.Incident) bool {
	if len(f.States) > 0 && !slices.Contains(f.States, in.State) {
		return false
	}
	if len(f.Severities) > 0 && !slices.Contains(f.Severities, in.Severity) {
		return false
	}
	if len(f.Sources) > 0 && !slices.Contains(f.Sources, in.Source) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, in.Type) {
		return false
	}
	if len(f.Fingerprints) > 0 && !slices.Contains(f.Fingerprints, in.Fingerprint) {
		return false
	}
	if f.Active != nil && *f.Active != in.State.Active() {
		return false
	}
	if !f.Since.IsZero() && in.LastSeen.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && in.LastSeen.After(f.Until) {
		return false
	}
	return true
}

// IsZero reports whether f selects every incident.
func (f Filter) IsZero() bool {
	return len(f.States) == 0 && len(f.Severities) == 0 && len(f.Sources) == 0 &&
		len(f.Types) == 0 && len(f.Fingerprints) == 0 && f.Active == nil &&
		f.Since.IsZero() && f.Until.IsZero()
}

// CompareNewestFirst orders incidents as List returns them: newest last_seen
// first, then id descending. It returns a negative number when a comes first.
func CompareNewestFirst(a, b *incident.Incident) int {
	if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// Window applies a page to an already ordered slice.
func (p Page) Window(n int) (lo, hi int) {
	lo = min(max(p.Offset, 0), n)
	hi = n
	if p.Limit > 0 && lo+p.Limit < hi {
		hi = lo + p.Limit
	}
	return lo, hi
}
