package pebble

import (
	"context"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/llm-im/incidentd/incident"
)

// scanChunk is how many records Scan reads per visit to the store; fn runs
// between visits, without the store's lock.
const scanChunk = 512

// Scan calls fn for every incident, in id order, from one Pebble snapshot
// taken when it starts: incidents written meanwhile are seen as they were,
// none is missed or repeated. It stops at fn's first error and returns it.
// The snapshot pins the files it reads until the scan ends (a long export
// of a busy store holds on to replaced sstables); Close ends a scan in
// progress with storage.ErrClosed at its next chunk.
func (s *Store) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	snap := s.db.NewSnapshot()
	s.scanMu.Lock()
	s.scans[snap] = struct{}{}
	s.scanMu.Unlock()
	s.life.RUnlock()
	defer s.releaseScan(snap)
	lower := famRecord
	for lower != nil {
		var chunk []*incident.Incident
		var err error
		chunk, lower, err = s.scanRecords(ctx, snap, lower)
		if err != nil {
			return err
		}
		for _, in := range chunk {
			if err := fn(in); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanRecords reads up to scanChunk records of snap from the key lower on;
// next is where the following chunk starts, nil after the last.
func (s *Store) scanRecords(ctx context.Context, snap *pebbledb.Snapshot, lower []byte) (chunk []*incident.Incident, next []byte, err error) {
	if err := s.enter(ctx); err != nil {
		return nil, nil, err
	}
	defer s.life.RUnlock()
	it, err := snap.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(famRecord)})
	if err != nil {
		return nil, nil, fmt.Errorf("pebble scan: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if len(chunk) == scanChunk {
			return chunk, append([]byte(nil), it.Key()...), nil
		}
		in, err := decodeRecord(it.Value())
		if err != nil {
			return nil, nil, fmt.Errorf("pebble record %s: %w", it.Key()[len(famRecord):], err)
		}
		chunk = append(chunk, in)
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("pebble scan: %w", err)
	}
	return chunk, nil, nil
}

// releaseScan closes a scan's snapshot unless Close already did.
func (s *Store) releaseScan(snap *pebbledb.Snapshot) {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	if _, ok := s.scans[snap]; ok {
		delete(s.scans, snap)
		_ = snap.Close()
	}
}

// closeScans closes the snapshots of scans still running; Close calls it
// once no call holds the store (a scan between chunks holds only its
// snapshot, and its next chunk finds the store closed).
func (s *Store) closeScans() {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	for snap := range s.scans {
		_ = snap.Close()
		delete(s.scans, snap)
	}
}
