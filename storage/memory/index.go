package memory

import (
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// set is a set of incident ids.
type set map[string]struct{}

// indexes are the set-based indexes of the store: one set per value of each
// indexed field, and the set of all ids.
type indexes struct {
	all         set
	state       map[incident.State]set
	severity    map[incident.Severity]set
	source      map[string]set
	typ         map[incident.Type]set
	fingerprint map[string]set
}

func newIndexes() indexes {
	return indexes{
		all:         make(set),
		state:       make(map[incident.State]set),
		severity:    make(map[incident.Severity]set),
		source:      make(map[string]set),
		typ:         make(map[incident.Type]set),
		fingerprint: make(map[string]set),
	}
}

func addTo[K comparable](m map[K]set, k K, id string) {
	s, ok := m[k]
	if !ok {
		s = make(set)
		m[k] = s
	}
	s[id] = struct{}{}
}

func removeFrom[K comparable](m map[K]set, k K, id string) {
	if s, ok := m[k]; ok {
		delete(s, id)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// add records in's memberships.
func (x *indexes) add(in *incident.Incident) {
	x.all[in.ID] = struct{}{}
	addTo(x.state, in.State, in.ID)
	addTo(x.severity, in.Severity, in.ID)
	addTo(x.source, in.Source, in.ID)
	addTo(x.typ, in.Type, in.ID)
	addTo(x.fingerprint, in.Fingerprint, in.ID)
}

// remove drops in's memberships; in must be the version that was added.
func (x *indexes) remove(in *incident.Incident) {
	delete(x.all, in.ID)
	removeFrom(x.state, in.State, in.ID)
	removeFrom(x.severity, in.Severity, in.ID)
	removeFrom(x.source, in.Source, in.ID)
	removeFrom(x.typ, in.Type, in.ID)
	removeFrom(x.fingerprint, in.Fingerprint, in.ID)
}

// candidates is the union of the index sets for one filter field's values.
type candidates []set

func (c candidates) size() int {
	n := 0
	for _, s := range c {
		n += len(s)
	}
	return n
}

// pick returns the sets of the given values, each value once.
func pick[K comparable](m map[K]set, values []K) candidates {
	seen := make(map[K]bool, len(values))
	out := make(candidates, 0, len(values))
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			out = append(out, m[v]) // a nil set is empty
		}
	}
	return out
}

// smallest returns the union of sets to scan for f: that of the filter field
// whose index sets hold the fewest ids (the set of all ids when f uses no
// indexed field). Every id matching f is in it.
func (x *indexes) smallest(f storage.Filter) candidates {
	best := candidates{x.all}
	consider := func(c candidates) {
		if c.size() < best.size() {
			best = c
		}
	}
	if len(f.States) > 0 {
		consider(pick(x.state, f.States))
	}
	if f.Active != nil {
		consider(pick(x.state, statesWhere(*f.Active)))
	}
	if len(f.Severities) > 0 {
		consider(pick(x.severity, f.Severities))
	}
	if len(f.Sources) > 0 {
		consider(pick(x.source, f.Sources))
	}
	if len(f.Types) > 0 {
		consider(pick(x.typ, f.Types))
	}
	if len(f.Fingerprints) > 0 {
		consider(pick(x.fingerprint, f.Fingerprints))
	}
	return best
}

// statesWhere lists the active states, or the inactive ones.
func statesWhere(active bool) []incident.State {
	var states []incident.State
	for _, st := range incident.States {
		if st.Active() == active {
			states = append(states, st)
		}
	}
	return states
}

// count answers a filter on one indexed field, without time bounds, from
// the sizes of that field's index sets, which are disjoint (an incident has
// one value per field): counting a state costs what a Pebble counter or a
// Redis SCARD does, not a scan. ok is false for any other filter.
func (x *indexes) count(f storage.Filter) (n int64, ok bool) {
	if !f.Since.IsZero() || !f.Until.IsZero() {
		return 0, false
	}
	fields := 0
	for _, used := range []bool{len(f.States) > 0, f.Active != nil, len(f.Severities) > 0,
		len(f.Sources) > 0, len(f.Types) > 0, len(f.Fingerprints) > 0} {
		if used {
			fields++
		}
	}
	if fields != 1 {
		return 0, false
	}
	var c candidates
	switch {
	case len(f.States) > 0:
		c = pick(x.state, f.States)
	case f.Active != nil:
		c = pick(x.state, statesWhere(*f.Active))
	case len(f.Severities) > 0:
		c = pick(x.severity, f.Severities)
	case len(f.Sources) > 0:
		c = pick(x.source, f.Sources)
	case len(f.Types) > 0:
		c = pick(x.typ, f.Types)
	default:
		c = pick(x.fingerprint, f.Fingerprints)
	}
	return int64(c.size()), true
}

// match returns the stored incidents (not copies) matching f, unordered.
// It scans the smallest candidate union and checks the rest of the filter,
// time bounds included, with Filter.Match. The sets of one field are
// disjoint (an incident has one value per field), so no id is seen twice.
func (s *Store) match(f storage.Filter) []*incident.Incident {
	c := s.idx.smallest(f)
	out := make([]*incident.Incident, 0, c.size())
	for _, ids := range c {
		for id := range ids {
			if in := s.byID[id]; f.Match(in) {
				out = append(out, in)
			}
		}
	}
	return out
}
