// Package storage is the last stage of the pipeline before the ack: the store
// interface every backend implements, the filter and page types of queries,
// and the factory that opens the backend named by [state] backend. Backends
// live in sub-packages (memory, pebble, redis); storetest holds the
// conformance suite they all pass.
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// Sentinel errors shared by all backends.
var (
	// ErrNotFound is returned by Get and Delete for an unknown id.
	ErrNotFound = errors.New("storage: incident not found")
	// ErrConflict is returned by Apply when another writer changed an
	// incident of the batch (version mismatch) or applied one of its events
	// first. Nothing of the batch was written: re-read and fold again.
	ErrConflict = errors.New("storage: concurrent update, retry")
	// ErrUnconfirmed is returned by Apply when the batch was written but
	// not confirmed as durable as configured (Redis: fewer replicas than
	// wait_replicas acknowledged it in time). Its events count as applied:
	// a retry finds them so, and must not count them again.
	ErrUnconfirmed = errors.New("storage: written but not confirmed durable")
	// ErrOutcomeUnknown is returned by Apply when the batch was sent but
	// its answer was lost (a timeout, a broken connection): it may have
	// been written, or may still be. A store that returns it is a Settler,
	// whose Settle tells which before the batch is retried.
	ErrOutcomeUnknown = errors.New("storage: write sent, its outcome unknown")
	// ErrClosed is returned by any call after Close.
	ErrClosed = errors.New("storage: store closed")
	// ErrLocked is returned by Open when another process holds the store.
	ErrLocked = errors.New("storage: store is locked by another process")
	// ErrReadOnly is wrapped by a readiness probe's error when the store
	// answers but cannot take writes (a Redis server demoted to a replica).
	ErrReadOnly = errors.New("storage: store is read-only")
)

// Store is what the worker, the API and the CLI need from a backend. All
// methods are safe for concurrent use.
type Store interface {
	// Lookup returns, for each fingerprint, the latest incident of that
	// identity (open or not; absent when there was none), and which of the
	// event ids were already applied. It is the read stage of a batch.
	Lookup(ctx context.Context, fingerprints, eventIDs []string) (Snapshot, error)
	// Apply writes a batch atomically and durably: every incident (created
	// when Version == 1, else replacing Version-1), its index memberships, the
	// identity pointers, and the applied-event markers. When any incident's
	// stored version differs from Version-1, or any event id was already
	// applied, it writes nothing and returns ErrConflict. A new incident
	// (Version == 1) is also a conflict unless its identity pointer, at that
	// point of the batch, names the incident it reopens (ReopenOf), or no
	// incident when ReopenOf is empty: otherwise another writer opened that
	// identity since the Lookup, and writing would leave two open incidents.
	// Only a new incident moves its identity pointer (to itself); an update
	// never does, so writing an older incident of an identity (a late
	// trigger folded into a resolved incident while another writer
	// reopened it, an operator closing it after a reopen) leaves the
	// pointer on the newer one, as if the update had come first.
	Apply(ctx context.Context, b Batch) error
	// Get returns one incident by id, or ErrNotFound.
	Get(ctx context.Context, id string) (*incident.Incident, error)
	// FindOpen returns the active incident of an identity, or ErrNotFound.
	FindOpen(ctx context.Context, fingerprint string) (*incident.Incident, error)
	// List returns the incidents matching f, newest last_seen first (id
	// breaking ties, descending), skipping p.Offset and at most p.Limit.
	List(ctx context.Context, f Filter, p Page) ([]*incident.Incident, error)
	// Count returns how many incidents match f.
	Count(ctx context.Context, f Filter) (int64, error)
	// Scan calls fn once for every stored incident and stops at fn's
	// first error, which it returns. Unlike paging through List, whose
	// order moves as incidents are updated, it never misses or repeats an
	// incident that exists for the whole scan, however busy the writers:
	// memory and Pebble read one consistent snapshot, in id order; Redis,
	// which has none, walks the id set (each incident as it is when read,
	// in no set order; incidents created or deleted meanwhile may or may not
	// appear). It is what export and migrate read.
	Scan(ctx context.Context, fn func(*incident.Incident) error) error
	// Delete removes an incident and all its index memberships, or returns
	// ErrNotFound.
	Delete(ctx context.Context, id string) error
	// DeleteVersions deletes each incident of want (id → version) whose
	// stored version is the one given, as Delete does, and returns how many
	// it deleted; an incident that is gone or at another version (a writer
	// changed it) is left alone. It is the retention prune's delete
	// (PruneInactive).
	DeleteVersions(ctx context.Context, want map[string]int64) (int, error)
	// Flush makes everything written so far durable (a no-op where every
	// Apply already is).
	Flush(ctx context.Context) error
	// Stats reports the incident count and the size on disk.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the store; calls after it return ErrClosed.
	Close() error
}

// Snapshot is the current state the fold of one batch starts from.
type Snapshot struct {
	// Latest maps a fingerprint to the newest incident of that identity.
	Latest map[string]*incident.Incident
	// Applied holds the event ids that were already applied.
	Applied map[string]bool
}

// Batch is one atomic write: the incidents the fold produced and the ids of
// every event it consumed (including acknowledges and resolves that changed
// nothing, so a redelivery of them is recognised too).
type Batch struct {
	Incidents []*incident.Incident
	EventIDs  []string
	// At is when the batch was applied; markers expire relative to it.
	At time.Time
}

// Filter selects incidents: OR within a field, AND across fields. Empty
// fields and zero times do not filter.
type Filter struct {
	States       []incident.State
	Severities   []incident.Severity
	Sources      []string
	Types        []incident.Type
	Fingerprints []string
	// Active, when set, keeps only active (true) or only inactive (false)
	// incidents.
	Active *bool
	// Since and Until bound last_seen, inclusive.
	Since, Until time.Time
}

// Page is an offset and a limit; Limit <= 0 means no limit.
type Page struct {
	Offset int
	Limit  int
}

// Stats is a backend's size.
type Stats struct {
	Incidents  int64 `json:"incidents"`
	SizeOnDisk int64 `json:"size_on_disk_bytes"`
}
