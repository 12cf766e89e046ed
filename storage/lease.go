package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
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

// Settler is a Store whose Apply can end in ErrOutcomeUnknown.
type Settler interface {
	// Settle decides the outcome of the write whose Apply returned lost
	// (an error wrapping ErrOutcomeUnknown, as Apply or Ingest returned
	// it): written, or not and never to be. An error means the store
	// cannot tell yet (it still fails): call it again.
	Settle(ctx context.Context, lost error) (written bool, err error)
}

// LeaseAfterConflicts is how many conflicts in a row Ingest takes before it
// asks a WriteLeaser store for the write lease.
const LeaseAfterConflicts = 2

// LeaseWaitLimit bounds how long one Ingest or SetState waits for another
// writer's lease to end (a lease lasts one batch, a few seconds at most when
// its holder died): longer means something else holds the key, a lease set
// by hand say, and the wait ends in an error wrapping ErrLeased, so the
// worker reports the store failing (logged, counted, not ready) instead of
// waiting in silence.
const LeaseWaitLimit = 15 * time.Second

// leaseWait measures one operation's wait for other writers' leases.
type leaseWait struct{ since time.Time }

// exceeded starts the clock at the first refusal and reports a wait past
// LeaseWaitLimit as an error wrapping err (an ErrLeased).
func (w *leaseWait) exceeded(err error) error {
	if w.since.IsZero() {
		w.since = time.Now()
		return nil
	}
	if time.Since(w.since) < LeaseWaitLimit {
		return nil
	}
	return fmt.Errorf("another writer has held the write lease for over %v (a lease key set by hand?): %w", LeaseWaitLimit, err)
}

// takeLease takes l's lease, waiting at most LeaseWaitLimit for it.
func takeLease(ctx context.Context, l WriteLeaser) error {
	lctx, cancel := context.WithTimeout(ctx, LeaseWaitLimit)
	defer cancel()
	err := l.LeaseWrites(lctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("another writer has held the write lease for over %v (a lease key set by hand?): %w", LeaseWaitLimit, ErrLeased)
	}
	return err
}
