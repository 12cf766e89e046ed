package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/storage"
)

// purgeChunk bounds how many markers one purge batch deletes, so writers
// wait for the apply mutex only briefly.
const purgeChunk = 4096

// PurgeExpiredMarkers deletes the applied-event markers written more than
// the retention before now: it walks E/ (one key per batch, in time order,
// listing the batch's event ids), deletes each e/ key that still holds
// that time, and drops the walked E/ range with one range deletion per
// chunk. It returns how many markers it walked. The store also runs it
// every PurgeInterval.
func (s *Store) PurgeExpiredMarkers(now time.Time) (int, error) {
	if err := s.enter(context.Background()); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	upper := markerTimeKey(now.Add(-s.cfg.AppliedRetention), "")
	total := 0
	for {
		n, more, err := s.purgeChunk(upper)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// purgeChunk removes the markers of expired batches, about purgeChunk of
// them, in one batch; more reports whether expired markers remain.
func (s *Store) purgeChunk(upper []byte) (n int, more bool, err error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: famMarkerTime, UpperBound: upper})
	if err != nil {
		return 0, false, fmt.Errorf("pebble purge: %w", err)
	}
	defer it.Close()
	var w ops
	var last []byte
	for ok := it.First(); ok && n < purgeChunk; ok = it.Next() {
		k := it.Key()
		at := k[len(famMarkerTime) : len(famMarkerTime)+timeLen]
		ids, err := markerList(k, it.Value())
		if err != nil {
			return 0, false, err
		}
		for _, id := range ids {
			v, closer, err := s.db.Get(markerKey(id))
			if errors.Is(err, pebbledb.ErrNotFound) {
				continue
			}
			if err != nil {
				return 0, false, fmt.Errorf("pebble purge: %w", err)
			}
			if bytes.Equal(v, at) {
				w.del(markerKey(id))
			}
			_ = closer.Close()
		}
		last = append(last[:0], k...)
		n += len(ids)
	}
	if last == nil {
		return 0, false, it.Error()
	}
	more = it.Valid()
	wb, err := w.batch(s.db)
	if err != nil {
		return 0, false, err
	}
	defer wb.Close()
	if err := wb.DeleteRange(famMarkerTime, append(last, 0), nil); err != nil {
		return 0, false, fmt.Errorf("pebble purge: %w", err)
	}
	if err := wb.Commit(s.wopts); err != nil {
		return 0, false, fmt.Errorf("pebble purge commit: %w", err)
	}
	s.bump(nil) // markers removed: later Applies read them again
	return n, more, nil
}

// markerList decodes the event ids of an E/ key: its value lists them; an
// empty value (one key per event) names the id in the key itself.
func markerList(key, val []byte) ([]string, error) {
	if len(val) == 0 {
		return []string{string(key[len(famMarkerTime)+timeLen:])}, nil
	}
	d := decoder{b: val}
	var ids []string
	for len(d.b) > 0 && !d.bad {
		ids = append(ids, d.string())
	}
	if d.bad {
		return nil, fmt.Errorf("pebble purge: malformed marker list under %q", key)
	}
	return ids, nil
}

// purgeLoop runs PurgeExpiredMarkers every PurgeInterval until Close.
func (s *Store) purgeLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			n, err := s.PurgeExpiredMarkers(now)
			if errors.Is(err, storage.ErrClosed) {
				return
			}
			if err != nil {
				s.log.Warn("purge of applied-event markers failed", zap.Error(err))
				continue
			}
			if n > 0 {
				s.log.Debug("purged applied-event markers", zap.Int("markers", n))
			}
		}
	}
}
