// Package memory is the in-process storage backend: the last stage of the
// pipeline for tests, demos and `backend = "memory"`. It keeps incidents in
// maps with the same set-based indexes the durable backends keep (all,
// state, severity, source, type, fingerprint), the identity pointer
// fingerprint → latest incident and the applied-event markers, so it behaves
// exactly like them under the conformance suite. Nothing survives the
// process.
package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// DefaultAppliedRetention is how long applied-event markers are kept when
// Config.AppliedRetention is not set (state.applied_retention's default).
const DefaultAppliedRetention = 24 * time.Hour

// Config tunes the memory store.
type Config struct {
	// AppliedRetention is how long an applied-event marker is kept, counted
	// from the Batch.At of the batch that wrote it. Expired markers are
	// purged lazily, on Apply. <= 0 means DefaultAppliedRetention.
	AppliedRetention time.Duration
}

// Store is a storage.Store held in memory. The zero value is not usable;
// call New or NewWithConfig. All methods are safe for concurrent use.
type Store struct {
	retention time.Duration

	mu      sync.RWMutex
	closed  bool
	byID    map[string]*incident.Incident
	latest  map[string]string // fingerprint -> id of the latest incident
	applied map[string]time.Time
	order   []marker // applied markers in insertion order, for purging
	idx     indexes
}

type marker struct {
	id string
	at time.Time
}

var _ storage.Store = (*Store)(nil)

// New returns an empty store with the default configuration; it is the
// zero-argument convenience for tests.
func New() *Store { return NewWithConfig(Config{}) }

// NewWithConfig returns an empty store configured by cfg.
func NewWithConfig(cfg Config) *Store {
	if cfg.AppliedRetention <= 0 {
		cfg.AppliedRetention = DefaultAppliedRetention
	}
	return &Store{
		retention: cfg.AppliedRetention,
		byID:      make(map[string]*incident.Incident),
		latest:    make(map[string]string),
		applied:   make(map[string]time.Time),
		idx:       newIndexes(),
	}
}

// read takes the read lock and checks the context and the closed flag. The
// caller must RUnlock when err is nil.
func (s *Store) read(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

// write is read's exclusive twin; the caller must Unlock when err is nil.
func (s *Store) write(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storage.ErrClosed
	}
	return nil
}

// Lookup returns the latest incident of each fingerprint and which of the
// event ids were already applied.
func (s *Store) Lookup(ctx context.Context, fingerprints, eventIDs []string) (storage.Snapshot, error) {
	if err := s.read(ctx); err != nil {
		return storage.Snapshot{}, err
	}
	defer s.mu.RUnlock()
	snap := storage.Snapshot{
		Latest:  make(map[string]*incident.Incident, len(fingerprints)),
		Applied: make(map[string]bool),
	}
	for _, fp := range fingerprints {
		if id, ok := s.latest[fp]; ok {
			snap.Latest[fp] = s.byID[id].Clone()
		}
	}
	for _, id := range eventIDs {
		if _, ok := s.applied[id]; ok {
			snap.Applied[id] = true
		}
	}
	return snap, nil
}

// Apply writes the batch, or nothing and storage.ErrConflict when an
// incident's stored version is not Version-1 or an event id was applied.
func (s *Store) Apply(ctx context.Context, b storage.Batch) error {
	if err := s.write(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	at := b.At
	if at.IsZero() {
		at = time.Now()
	}
	s.purge(at)
	if err := s.check(b); err != nil {
		return err
	}
	for _, in := range b.Incidents {
		c := in.Clone()
		if old, ok := s.byID[c.ID]; ok {
			s.idx.remove(old)
		}
		s.byID[c.ID] = c
		s.idx.add(c)
		if c.Version == 1 {
			// Only a new incident moves its identity's pointer: an update
			// (a late trigger, an operator closing an older incident)
			// never takes it back from a newer one.
			s.latest[c.Fingerprint] = c.ID
		}
	}
	for _, id := range b.EventIDs {
		if _, ok := s.applied[id]; !ok {
			s.applied[id] = at
			s.order = append(s.order, marker{id: id, at: at})
		}
	}
	return nil
}

// check verifies a batch's versions, identity pointers and event ids
// against what is stored.
func (s *Store) check(b storage.Batch) error {
	pointer := make(map[string]string, len(b.Incidents)) // fingerprint -> latest id as the batch moves it
	for _, in := range b.Incidents {
		var have int64
		if old, ok := s.byID[in.ID]; ok {
			have = old.Version
		}
		if have != in.Version-1 {
			return fmt.Errorf("incident %s: stored version %d, batch version %d: %w", in.ID, have, in.Version, storage.ErrConflict)
		}
		latest, moved := pointer[in.Fingerprint]
		if !moved {
			latest = s.latest[in.Fingerprint]
		}
		if in.Version == 1 {
			if latest != in.ReopenOf {
				return fmt.Errorf("incident %s: identity %s now at %q, not %q: %w", in.ID, in.Fingerprint, latest, in.ReopenOf, storage.ErrConflict)
			}
			pointer[in.Fingerprint] = in.ID
		}
	}
	for _, id := range b.EventIDs {
		if _, ok := s.applied[id]; ok {
			return fmt.Errorf("event %s already applied: %w", id, storage.ErrConflict)
		}
	}
	return nil
}

// purge drops the markers older than the retention, oldest first, stopping
// at the first one still alive (markers are nearly in time order).
func (s *Store) purge(now time.Time) {
	cut := now.Add(-s.retention)
	n := 0
	for n < len(s.order) && s.order[n].at.Before(cut) {
		if s.applied[s.order[n].id].Equal(s.order[n].at) {
			delete(s.applied, s.order[n].id)
		}
		n++
	}
	clear(s.order[:n]) // release the ids; appends reallocate the array as it drains
	s.order = s.order[n:]
}

// Get returns a copy of the incident with that id, or storage.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*incident.Incident, error) {
	if err := s.read(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	in, ok := s.byID[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return in.Clone(), nil
}

// FindOpen returns a copy of the active incident of an identity, or
// storage.ErrNotFound.
func (s *Store) FindOpen(ctx context.Context, fingerprint string) (*incident.Incident, error) {
	if err := s.read(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	id, ok := s.latest[fingerprint]
	if !ok || !s.byID[id].Active() {
		return nil, storage.ErrNotFound
	}
	return s.byID[id].Clone(), nil
}

// List returns copies of the incidents matching f, newest first, paged.
func (s *Store) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	if err := s.read(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	found := newestFirst(s.match(f), p)
	lo, hi := p.Window(len(found))
	out := make([]*incident.Incident, 0, hi-lo)
	for _, in := range found[lo:hi] {
		out = append(out, in.Clone())
	}
	return out, nil
}

// Scan calls fn with a copy of every incident, in id order, from one
// consistent snapshot: the records are replaced on every write, never
// changed, so holding the current ones is a snapshot. It stops at fn's
// first error and returns it.
func (s *Store) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	if err := s.read(ctx); err != nil {
		return err
	}
	all := make([]*incident.Incident, 0, len(s.byID))
	for _, in := range s.byID {
		all = append(all, in)
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *incident.Incident) int { return strings.Compare(a.ID, b.ID) })
	for _, in := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in.Clone()); err != nil {
			return err
		}
	}
	return nil
}

// Count returns how many incidents match f.
func (s *Store) Count(ctx context.Context, f storage.Filter) (int64, error) {
	if err := s.read(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if f.IsZero() {
		return int64(len(s.byID)), nil
	}
	if n, ok := s.idx.count(f); ok {
		return n, nil
	}
	return int64(len(s.match(f))), nil
}

// Delete removes an incident, its index memberships and, when it was the
// latest of its identity, the identity pointer (the next trigger of that
// identity then opens a fresh incident, not a reopen).
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.write(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	in, ok := s.byID[id]
	if !ok {
		return storage.ErrNotFound
	}
	s.remove(in)
	return nil
}

// DeleteVersions deletes each incident of want whose stored version is the
// one given (storage.Store) and returns how many it deleted.
func (s *Store) DeleteVersions(ctx context.Context, want map[string]int64) (int, error) {
	if err := s.write(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for id, v := range want {
		if in, ok := s.byID[id]; ok && in.Version == v {
			s.remove(in)
			n++
		}
	}
	return n, nil
}

// remove drops in, its index memberships and its identity pointer when it
// is the latest of its identity; the caller holds mu.
func (s *Store) remove(in *incident.Incident) {
	s.idx.remove(in)
	delete(s.byID, in.ID)
	if s.latest[in.Fingerprint] == in.ID {
		delete(s.latest, in.Fingerprint)
	}
}

// Flush is a no-op: there is nothing to make durable.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.read(ctx); err != nil {
		return err
	}
	s.mu.RUnlock()
	return nil
}

// Stats reports the incident count; SizeOnDisk is always 0.
func (s *Store) Stats(ctx context.Context) (storage.Stats, error) {
	if err := s.read(ctx); err != nil {
		return storage.Stats{}, err
	}
	defer s.mu.RUnlock()
	return storage.Stats{Incidents: int64(len(s.byID))}, nil
}

// Close drops the data; every later call, Close included, returns
// storage.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}
	s.closed = true
	s.byID, s.latest, s.applied, s.order = nil, nil, nil, nil
	s.idx = indexes{}
	return nil
}
