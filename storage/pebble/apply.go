package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Apply checks versions, identity pointers and markers and writes the whole
// batch (records, index keys, pointers, markers, counters) in one Pebble
// batch, or nothing and storage.ErrConflict. Writers are serialised by a
// store-wide mutex: the directory has a single owner, so the check and the
// commit cannot interleave with another writer.
func (s *Store) Apply(ctx context.Context, b storage.Batch) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.life.RUnlock()
	at := b.At
	if at.IsZero() {
		at = time.Now()
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()

	st := &staged{
		w:       make(ops, 0, 10*len(b.Incidents)+2*len(b.EventIDs)+8),
		delta:   make(map[entry]int64, 16),
		v:       s.current(),
		pointer: make(map[string]string, len(b.Incidents)),
		moved:   make(map[string]string, len(b.Incidents)),
		written: make(map[string]*meta, len(b.Incidents)),
	}
	var err error
	if st.stored, err = s.storedMetas(st.v, b.Incidents); err != nil {
		return err
	}
	for _, in := range b.Incidents {
		if err := s.stage(st, in); err != nil {
			return err
		}
	}
	marked, err := s.putMarkers(&st.w, st.v, b.EventIDs, at)
	if err != nil {
		return err
	}
	s.putCounters(&st.w, st.delta)
	return s.commit(st.w, st.delta, &writeLog{records: st.written, markers: marked}, st.moved, st.recs)
}

// staged is an Apply in progress.
type staged struct {
	w       ops
	delta   map[entry]int64
	v       *view
	stored  map[string]*meta  // id -> stored version, before the batch
	written map[string]*meta  // id -> version written earlier in the batch
	pointer map[string]string // fingerprint -> id as the batch moves it
	moved   map[string]string // the pointers the batch writes
	recs    []cachedRecord    // the records written, for the record cache
}

// stage checks one incident against the stored version and identity
// pointer (as the batch has moved them so far) and adds its writes.
func (s *Store) stage(st *staged, in *incident.Incident) error {
	old, ok := st.written[in.ID]
	if !ok {
		old = st.stored[in.ID]
	}
	var have int64
	if old != nil {
		have = old.version
	}
	if have != in.Version-1 {
		return fmt.Errorf("incident %s: stored version %d, batch version %d: %w", in.ID, have, in.Version, storage.ErrConflict)
	}
	latest, moved := st.pointer[in.Fingerprint]
	if !moved {
		latest = s.ids.get(in.Fingerprint)
	}
	if in.Version == 1 && latest != in.ReopenOf {
		return fmt.Errorf("incident %s: identity %s now at %q, not %q: %w", in.ID, in.Fingerprint, latest, in.ReopenOf, storage.ErrConflict)
	}
	m, rec, err := putIncident(&st.w, old, in, st.delta)
	if err != nil {
		return err
	}
	st.recs = append(st.recs, cachedRecord{id: in.ID, rec: rec})
	if in.Version == 1 {
		// Only a new incident moves its identity's pointer: an update (a
		// late trigger, an operator closing an older incident) never
		// takes it back from a newer one.
		st.w.set(pointerKey(in.Fingerprint), []byte(in.ID))
		st.moved[in.Fingerprint] = in.ID
		st.pointer[in.Fingerprint] = in.ID
	}
	st.written[in.ID] = m
	return nil
}

// commit writes w in one batch and, once it is committed, updates the
// identity pointers (moves maps a fingerprint to its new latest id, "" for
// none) and the record cache (recs), then bumps the write sequence and the
// in-memory counters; the caller holds applyMu.
func (s *Store) commit(w ops, delta map[entry]int64, log *writeLog, moves map[string]string, recs []cachedRecord) error {
	wb, err := w.batch(s.db)
	if err != nil {
		return err
	}
	defer wb.Close()
	if err := wb.Commit(s.wopts); err != nil {
		return fmt.Errorf("pebble commit: %w", err)
	}
	s.ids.setAll(moves)
	s.records.apply(recs)
	s.bump(log)
	s.addCounts(delta)
	return nil
}

// putIncident writes in's record and moves its index keys from old's (nil
// for a new incident), skipping the keys that do not change. It returns
// in's meta and encoded record.
func putIncident(w *ops, old *meta, in *incident.Incident, delta map[entry]int64) (*meta, []byte, error) {
	rec, err := encodeRecord(in)
	if err != nil {
		return nil, nil, err
	}
	w.set(recordKey(in.ID), rec)
	if old == nil {
		delta[entry{fieldAll, ""}]++
		w.set(historyKey(in.Fingerprint, in.ID), nil)
	}
	m := metaOf(in)
	for i, e := range m.entries {
		nk := indexKey(e, in.LastSeen, in.ID)
		if old != nil {
			ok := indexKey(old.entries[i], old.lastSeen, in.ID)
			if bytes.Equal(ok, nk) {
				continue
			}
			w.del(ok)
			delta[old.entries[i]]--
		}
		w.set(nk, nil)
		delta[e]++
	}
	return m, rec, nil
}

// putMarkers checks that no event id was applied and writes one e/ key
// per id and one E/ key for the batch, listing its ids.
func (s *Store) putMarkers(w *ops, v *view, ids []string, at time.Time) (map[string]bool, error) {
	val := appendTime(nil, at)
	seen := make(map[string]bool, len(ids))
	list := make([]byte, 0, 40*len(ids))
	first := ""
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = true
		ok, err := s.applied(v, id)
		if err != nil {
			return nil, err
		}
		if ok {
			return nil, fmt.Errorf("event %s already applied: %w", id, storage.ErrConflict)
		}
		w.set(markerKey(id), val)
		if first == "" {
			first = id
		}
		list = appendString(list, id)
	}
	if len(seen) > 0 {
		// The first id makes the key unique: no other batch applies it.
		w.set(markerTimeKey(at, first), list)
	}
	return seen, nil
}

// putCounters writes the counters delta changes, fingerprints excepted.
func (s *Store) putCounters(w *ops, delta map[entry]int64) {
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	for e, d := range delta {
		if d == 0 {
			continue
		}
		if n := s.counts[e] + d; n == 0 {
			w.del(counterKey(e.field, e.value))
		} else {
			w.set(counterKey(e.field, e.value), encodeInt(n))
		}
	}
}

// addCounts applies a committed delta to the in-memory counters.
func (s *Store) addCounts(delta map[entry]int64) {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	for e, d := range delta {
		if d == 0 {
			continue
		}
		if n := s.counts[e] + d; n == 0 {
			delete(s.counts, e)
		} else {
			s.counts[e] = n
		}
	}
}

// counter reads one in-memory counter.
func (s *Store) counter(e entry) int64 {
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	return s.counts[e]
}

// Delete removes an incident, its index keys and, when it is the latest
// of its identity, the identity pointer, in one batch.
func (s *Store) Delete(ctx context.Context, id string) error {
	n, err := s.deleteIDs(ctx, []string{id}, nil)
	if err == nil && n == 0 {
		err = storage.ErrNotFound
	}
	return err
}

// DeleteVersions deletes each incident of want whose stored version is the
// one given (storage.Store), all in one batch, and returns how
// many it deleted.
func (s *Store) DeleteVersions(ctx context.Context, want map[string]int64) (int, error) {
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return s.deleteIDs(ctx, ids, want)
}

// deleteIDs deletes the incidents of ids that exist (at the version of
// want, when want is not nil) in one batch, and returns how many.
func (s *Store) deleteIDs(ctx context.Context, ids []string, want map[string]int64) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	var w ops
	delta := map[entry]int64{}
	moves := map[string]string{}
	recs := make([]cachedRecord, 0, len(ids))
	for _, id := range ids {
		old, ok, err := s.latestRecord(id)
		if err != nil {
			return 0, err
		}
		if !ok || want != nil && old.Version != want[id] {
			continue
		}
		delta[entry{fieldAll, ""}]--
		w.del(recordKey(id))
		w.del(historyKey(old.Fingerprint, id))
		for _, e := range entries(old) {
			w.del(indexKey(e, old.LastSeen, old.ID))
			delta[e]--
		}
		if s.ids.get(old.Fingerprint) == id {
			w.del(pointerKey(old.Fingerprint))
			moves[old.Fingerprint] = ""
		}
		recs = append(recs, cachedRecord{id: id})
	}
	if len(recs) == 0 {
		return 0, nil
	}
	s.putCounters(&w, delta)
	// A deletion is not in a write log: the Applies after it read.
	if err := s.commit(w, delta, nil, moves, recs); err != nil {
		return 0, err
	}
	return len(recs), nil
}

func encodeInt(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func decodeInt(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
