package pebble

import (
	"fmt"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// meta is what Apply needs of a stored incident: its version and the
// index keys to move.
type meta struct {
	version  int64
	lastSeen time.Time
	entries  [indexedFields]entry
}

func metaOf(in *incident.Incident) *meta {
	return &meta{version: in.Version, lastSeen: in.LastSeen, entries: entries(in)}
}

// readCache is what the last Lookup read: the stored incidents the
// identity pointers name and the markers of its event ids. It is tagged with
// the store's write sequence read before the first Get; Apply trusts it
// overlaid with the logs of the writes committed since (see view), which
// saves the write path re-reading what the read path just read. Writers
// commit and then bump seq, so a Lookup that saw part of a newer state is
// tagged older than that state, and that state's log overrides its reads.
type readCache struct {
	seq     uint64
	records map[string]*meta // id -> stored incident
	markers map[string]bool  // event id -> applied
}

func newReadCache(seq uint64, fps, ids int) *readCache {
	return &readCache{
		seq:     seq,
		records: make(map[string]*meta, fps),
		markers: make(map[string]bool, ids),
	}
}

// writeLog is what one committed Apply wrote that a later Apply checks:
// incident versions and markers (identity pointers are always current in
// memory, see identities). Apply keeps the last
// logRing of them so that the reads of a Lookup stay usable after writes
// that committed while (or after) it read: the pipelined worker looks up
// batch N+1 while batch N commits.
type writeLog struct {
	seq     uint64
	records map[string]*meta // id -> written version
	markers map[string]bool  // event ids marked
}

// logRing is how many commits a Lookup's reads may lag behind and still be
// used.
const logRing = 8

// view is what Apply may trust instead of reading: the last Lookup's reads
// overlaid with the write logs of every commit since (oldest first).
type view struct {
	rc   *readCache
	logs []*writeLog
}

// current returns the last Lookup's reads with the logs of the commits
// since, or nil when any of those commits left no log (Delete, marker
// purge) or is too old; the caller holds applyMu.
func (s *Store) current() *view {
	rc := s.cache.Load()
	if rc == nil {
		return nil
	}
	now := s.seq.Load()
	if now-rc.seq > logRing {
		return nil
	}
	v := &view{rc: rc}
	for q := rc.seq + 1; q <= now; q++ {
		l := s.logs[q%logRing]
		if l == nil || l.seq != q {
			return nil
		}
		v.logs = append(v.logs, l)
	}
	return v
}

// bump records a committed write: its log, or nil when it wrote something
// a log cannot describe; the caller holds applyMu.
func (s *Store) bump(l *writeLog) {
	q := s.seq.Add(1)
	if l != nil {
		l.seq = q
	}
	s.logs[q%logRing] = l
}

// record returns what v knows of an incident's stored version. Only
// incidents that exist are known (absent ids are read from the store).
func (v *view) record(id string) (*meta, bool) {
	if v == nil {
		return nil, false
	}
	for i := len(v.logs) - 1; i >= 0; i-- {
		if m, ok := v.logs[i].records[id]; ok {
			return m, true
		}
	}
	m, ok := v.rc.records[id]
	return m, ok
}

// marker returns what v knows of an event id's marker.
func (v *view) marker(id string) (applied, known bool) {
	if v == nil {
		return false, false
	}
	for i := len(v.logs) - 1; i >= 0; i-- {
		if v.logs[i].markers[id] {
			return true, true
		}
	}
	applied, known = v.rc.markers[id]
	return applied, known
}

// storedMetas returns the stored version of each incident of a batch
// (absent when there is none): from the view when it knows the id, else
// from the record cache (updates only: a new incident's id is checked to
// be absent), else read in one sorted pass over r/.
func (s *Store) storedMetas(v *view, ins []*incident.Incident) (map[string]*meta, error) {
	out := make(map[string]*meta, len(ins))
	var missing, updated []string
	for _, in := range ins {
		if m, ok := v.record(in.ID); ok {
			out[in.ID] = m
			continue
		}
		if in.Version > 1 {
			updated = append(updated, in.ID)
		} else {
			missing = append(missing, in.ID)
		}
	}
	found := func(id string, v []byte) error {
		if v == nil {
			return nil
		}
		in, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("pebble record %s: %w", id, err)
		}
		out[id] = metaOf(in)
		return nil
	}
	uncached, err := s.records.getMany(updated, found) // current: the caller holds applyMu
	if err != nil {
		return nil, err
	}
	return out, multiGet(s.db, famRecord, append(missing, uncached...), found)
}

// applied reports whether an event id has a marker.
func (s *Store) applied(v *view, id string) (bool, error) {
	if ok, known := v.marker(id); known {
		return ok, nil
	}
	return exists(s.db, markerKey(id))
}
