package pebble

import (
	"context"
	"fmt"
	"slices"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// plan is a filter resolved to index values: OR within each clause, AND
// across clauses. empty means no incident can match.
type plan struct {
	clauses      [][]entry
	fingerprints []string // a clause of its own, answered from h/ keys
	since, until time.Time
	empty        bool
}

// planFor turns a filter into index clauses; Active becomes a state clause
// (intersected with States when both are set).
func planFor(f storage.Filter) plan {
	p := plan{since: f.Since, until: f.Until}
	states := f.States
	if f.Active != nil {
		var keep []incident.State
		for _, st := range incident.States {
			if st.Active() == *f.Active && (len(states) == 0 || slices.Contains(states, st)) {
				keep = append(keep, st)
			}
		}
		if len(keep) == 0 {
			p.empty = true
		}
		states = keep
	}
	p.add(fieldState, names(states))
	p.add(fieldSeverity, names(f.Severities))
	p.add(fieldSource, f.Sources)
	p.add(fieldType, names(f.Types))
	for _, fp := range f.Fingerprints {
		if !slices.Contains(p.fingerprints, fp) {
			p.fingerprints = append(p.fingerprints, fp)
		}
	}
	if len(p.clauses) == 0 && len(p.fingerprints) == 0 {
		// Every incident has one of the five severities.
		p.add(fieldSeverity, names(incident.Severities))
	}
	if !p.since.IsZero() && !p.until.IsZero() && p.until.Before(p.since) {
		p.empty = true
	}
	return p
}

func (p *plan) add(f field, values []string) {
	if len(values) == 0 {
		return
	}
	c := make([]entry, 0, len(values))
	for _, v := range values {
		e := entry{f, v}
		if !slices.Contains(c, e) {
			c = append(c, e)
		}
	}
	p.clauses = append(p.clauses, c)
}

func names[T fmt.Stringer](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// List returns the incidents matching f, newest last_seen first, paged: it
// walks the intersection of the index clauses in key order, skips Offset
// matches and reads the records of the next Limit, all from one snapshot.
func (s *Store) List(ctx context.Context, f storage.Filter, pg storage.Page) ([]*incident.Incident, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	p := planFor(f)
	if p.empty {
		return []*incident.Incident{}, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	cur, err := p.open(snap)
	if err != nil {
		return nil, err
	}
	defer cur.close()
	var ids []string
	skip := max(pg.Offset, 0)
	for ok := cur.first(); ok; ok = cur.next() {
		if skip > 0 {
			skip--
			continue
		}
		ids = append(ids, suffixID(cur.key()))
		if pg.Limit > 0 && len(ids) == pg.Limit {
			break
		}
		if len(ids)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if err := cur.err(); err != nil {
		return nil, fmt.Errorf("pebble list: %w", err)
	}
	out := make([]*incident.Incident, 0, len(ids))
	for _, id := range ids {
		in, ok, err := getRecord(snap, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("pebble list: index names missing incident %s", id)
		}
		out = append(out, in)
	}
	return out, nil
}

// Count returns how many incidents match f: from the in-memory counters
// when f is one clause of counted values without a time range, else by
// walking the index intersection.
func (s *Store) Count(ctx context.Context, f storage.Filter) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	p := planFor(f)
	if p.empty {
		return 0, nil
	}
	if n, ok := s.countFromCounters(p); ok {
		return n, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	cur, err := p.open(snap)
	if err != nil {
		return 0, err
	}
	defer cur.close()
	var n int64
	for ok := cur.first(); ok; ok = cur.next() {
		n++
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
	}
	if err := cur.err(); err != nil {
		return 0, fmt.Errorf("pebble count: %w", err)
	}
	return n, nil
}

func (s *Store) countFromCounters(p plan) (int64, bool) {
	if len(p.clauses) != 1 || len(p.fingerprints) > 0 || !p.since.IsZero() || !p.until.IsZero() {
		return 0, false
	}
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	var n int64
	for _, e := range p.clauses[0] {
		n += s.counts[e]
	}
	return n, true
}

// open builds the cursor tree of the plan: one leaf iterator per index
// value, bounded by the time range, merged per clause and intersected.
func (p plan) open(r pebbledb.Reader) (cursor, error) {
	lo, hi := p.suffixBounds()
	and := make(andCursor, 0, len(p.clauses)+1)
	if len(p.fingerprints) > 0 {
		l, err := openHistory(r, p.fingerprints, lo, hi)
		if err != nil {
			return nil, err
		}
		and = append(and, l)
	}
	for _, c := range p.clauses {
		or := make(orCursor, 0, len(c))
		for _, e := range c {
			l, err := openLeaf(r, indexPrefix(e.field, e.value), lo, hi)
			if err != nil {
				or.close()
				and.close()
				return nil, err
			}
			or = append(or, l)
		}
		if len(or) == 1 {
			and = append(and, or[0])
		} else {
			and = append(and, or)
		}
	}
	if len(and) == 1 {
		return and[0], nil
	}
	return and, nil
}

// suffixBounds turns Since/Until into the suffix range [lo, hi); nil means
// unbounded.
func (p plan) suffixBounds() (lo, hi []byte) {
	if !p.until.IsZero() {
		lo = appendInvTime(nil, p.until) // newest allowed first
	}
	if !p.since.IsZero() {
		hi = prefixEnd(appendInvTime(nil, p.since))
	}
	return lo, hi
}
