package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

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

	wb := s.db.NewBatch()
	defer wb.Close()
	delta := make(map[entry]int64, 16)
	pointer := make(map[string]string, len(b.Incidents)) // fingerprint -> id as the batch moves it
	written := make(map[string]*incident.Incident, len(b.Incidents))
	for _, in := range b.Incidents {
		old, err := s.stored(written, in.ID)
		if err != nil {
			return err
		}
		var have int64
		if old != nil {
			have = old.Version
		}
		if have != in.Version-1 {
			return fmt.Errorf("incident %s: stored version %d, batch version %d: %w", in.ID, have, in.Version, storage.ErrConflict)
		}
		latest, moved := pointer[in.Fingerprint]
		if !moved {
			if latest, _, err = getString(s.db, pointerKey(in.Fingerprint)); err != nil {
				return err
			}
		}
		if in.Version == 1 && latest != in.ReopenOf {
			return fmt.Errorf("incident %s: identity %s now at %q, not %q: %w", in.ID, in.Fingerprint, latest, in.ReopenOf, storage.ErrConflict)
		}
		if err := putIncident(wb, old, in, delta); err != nil {
			return err
		}
		if latest != in.ID {
			if err := wb.Set(pointerKey(in.Fingerprint), []byte(in.ID), nil); err != nil {
				return fmt.Errorf("pebble batch: %w", err)
			}
		}
		pointer[in.Fingerprint] = in.ID
		written[in.ID] = in
	}
	if err := s.putMarkers(wb, b.EventIDs, at); err != nil {
		return err
	}
	if err := s.putCounters(wb, delta); err != nil {
		return err
	}
	if err := wb.Commit(s.wopts); err != nil {
		return fmt.Errorf("pebble commit: %w", err)
	}
	s.addCounts(delta)
	return nil
}

// stored returns the current version of an incident: the one written
// earlier in this batch, else the stored one, else nil.
func (s *Store) stored(written map[string]*incident.Incident, id string) (*incident.Incident, error) {
	if in, ok := written[id]; ok {
		return in, nil
	}
	in, _, err := getRecord(s.db, id)
	return in, err
}

// putIncident writes in's record and moves its index keys from old's (nil
// for a new incident), skipping the keys that do not change.
func putIncident(wb *pebbledb.Batch, old, in *incident.Incident, delta map[entry]int64) error {
	rec, err := encodeRecord(in)
	if err != nil {
		return err
	}
	if err := wb.Set(recordKey(in.ID), rec, nil); err != nil {
		return fmt.Errorf("pebble batch: %w", err)
	}
	next := entries(in)
	var prev [6]entry
	if old != nil {
		prev = entries(old)
	}
	for i, e := range next {
		nk := indexKey(e, in.LastSeen, in.ID)
		if old != nil {
			ok := indexKey(prev[i], old.LastSeen, old.ID)
			if bytes.Equal(ok, nk) {
				continue
			}
			if err := wb.Delete(ok, nil); err != nil {
				return fmt.Errorf("pebble batch: %w", err)
			}
			delta[prev[i]]--
		}
		if err := wb.Set(nk, nil, nil); err != nil {
			return fmt.Errorf("pebble batch: %w", err)
		}
		delta[e]++
	}
	return nil
}

// putMarkers checks that no event id was applied and writes e/ and E/ for
// each (once per id).
func (s *Store) putMarkers(wb *pebbledb.Batch, ids []string, at time.Time) error {
	val := appendTime(nil, at)
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		ok, err := exists(s.db, markerKey(id))
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("event %s already applied: %w", id, storage.ErrConflict)
		}
		if err := wb.Set(markerKey(id), val, nil); err != nil {
			return fmt.Errorf("pebble batch: %w", err)
		}
		if err := wb.Set(markerTimeKey(at, id), nil, nil); err != nil {
			return fmt.Errorf("pebble batch: %w", err)
		}
	}
	return nil
}

// putCounters writes the counters delta changes, fingerprints excepted.
func (s *Store) putCounters(wb *pebbledb.Batch, delta map[entry]int64) error {
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	for e, d := range delta {
		if d == 0 || e.field == fieldFingerprint {
			continue
		}
		n := s.counts[e] + d
		var err error
		if n == 0 {
			err = wb.Delete(counterKey(e.field, e.value), nil)
		} else {
			err = wb.Set(counterKey(e.field, e.value), encodeInt(n), nil)
		}
		if err != nil {
			return fmt.Errorf("pebble batch: %w", err)
		}
	}
	return nil
}

// addCounts applies a committed delta to the in-memory counters.
func (s *Store) addCounts(delta map[entry]int64) {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	for e, d := range delta {
		if d == 0 || e.field == fieldFingerprint {
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
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	old, ok, err := getRecord(s.db, id)
	if err != nil {
		return err
	}
	if !ok {
		return storage.ErrNotFound
	}
	wb := s.db.NewBatch()
	defer wb.Close()
	delta := make(map[entry]int64, 6)
	if err := wb.Delete(recordKey(id), nil); err != nil {
		return fmt.Errorf("pebble batch: %w", err)
	}
	for _, e := range entries(old) {
		if err := wb.Delete(indexKey(e, old.LastSeen, old.ID), nil); err != nil {
			return fmt.Errorf("pebble batch: %w", err)
		}
		delta[e]--
	}
	latest, _, err := getString(s.db, pointerKey(old.Fingerprint))
	if err != nil {
		return err
	}
	if latest == id {
		if err := wb.Delete(pointerKey(old.Fingerprint), nil); err != nil {
			return fmt.Errorf("pebble batch: %w", err)
		}
	}
	if err := s.putCounters(wb, delta); err != nil {
		return err
	}
	if err := wb.Commit(s.wopts); err != nil {
		return fmt.Errorf("pebble commit: %w", err)
	}
	s.addCounts(delta)
	return nil
}

func encodeInt(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func decodeInt(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
