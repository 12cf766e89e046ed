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
	entries  [6]entry
}

func metaOf(in *incident.Incident) *meta {
	return &meta{version: in.Version, lastSeen: in.LastSeen, entries: entries(in)}
}

// readCache is what the last Lookup read: identity pointers, the stored
// incidents they name and the markers of its event ids. It is tagged with
// the store's write sequence read before the first Get; Apply trusts it
// only while no write has committed since (seq unchanged), which saves the
// write path re-reading what the read path of the same batch just read.
// Writers commit and then bump seq, so a Lookup that saw part of a newer
// state is always tagged older than that state and never trusted.
type readCache struct {
	seq      uint64
	pointers map[string]string // fingerprint -> id, "" when absent
	records  map[string]*meta  // id -> stored incident
	markers  map[string]bool   // event id -> applied
}

func newReadCache(seq uint64, fps, ids int) *readCache {
	return &readCache{
		seq:      seq,
		pointers: make(map[string]string, fps),
		records:  make(map[string]*meta, fps),
		markers:  make(map[string]bool, ids),
	}
}

// current returns the cache when nothing was written since it was filled;
// the caller holds applyMu.
func (s *Store) current() *readCache {
	if rc := s.cache.Load(); rc != nil && rc.seq == s.seq.Load() {
		return rc
	}
	return nil
}

// pointerOf returns the stored identity pointer of fp.
func (s *Store) pointerOf(rc *readCache, fp string) (string, error) {
	if rc != nil {
		if id, ok := rc.pointers[fp]; ok {
			return id, nil
		}
	}
	id, _, err := getString(s.db, pointerKey(fp))
	return id, err
}

// storedMetas returns the stored version of each incident of a batch
// (absent when there is none): from the cache when it holds the id, else
// read in one sorted pass over r/.
func (s *Store) storedMetas(rc *readCache, ins []*incident.Incident) (map[string]*meta, error) {
	out := make(map[string]*meta, len(ins))
	var missing []string
	for _, in := range ins {
		if rc != nil {
			if m, ok := rc.records[in.ID]; ok {
				out[in.ID] = m
				continue
			}
		}
		missing = append(missing, in.ID)
	}
	err := multiGet(s.db, famRecord, missing, func(id string, v []byte) error {
		if v == nil {
			return nil
		}
		in, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("pebble record %s: %w", id, err)
		}
		out[id] = metaOf(in)
		return nil
	})
	return out, err
}

// applied reports whether an event id has a marker.
func (s *Store) applied(rc *readCache, id string) (bool, error) {
	if rc != nil {
		if ok, known := rc.markers[id]; known {
			return ok, nil
		}
	}
	return exists(s.db, markerKey(id))
}
