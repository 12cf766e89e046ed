package storage

import (
	"context"
	"fmt"
)

// ErrLeased is returned by Apply (wrapped, and wrapping ErrConflict) when
// another writer holds the store's write lease (see WriteLeaser): nothing was
// written; the lease is held for one batch, so wait a moment and try again.
var ErrLeased = fmt.Errorf("%w: another writer holds the write lease", ErrConflict)

// WriteLeaser is a store shared by several writers (Redis: worker pods) that
// can hand the writes to one of them for a moment. Optimistic concurrency
// alone can starve a writer: a batch touching hundreds of identities, read
// while other pods commit back to back (a backlog), finds one of its
// incidents changed at nearly every Apply. After LeaseAfterConflicts
// conflicts in a row Ingest takes the lease; while it is held every other
// writer's Apply fails with ErrLeased, so the holder's next read and Apply
// cannot lose. A lease ends when released or after a few seconds (a holder
// that died).
type WriteLeaser interface {
	// LeaseWrites waits until this writer holds the lease (or extends it
	// when it already does). It returns an error when ctx ends or the store
	// fails.
	LeaseWrites(ctx context.Context) error
	// ReleaseWrites gives the lease up if this writer still holds it.
	ReleaseWrites(ctx context.Context) error
}

// LeaseAfterConflicts is how many conflicts in a row Ingest takes before it
// asks a WriteLeaser store for the write lease.
const LeaseAfterConflicts = 2
