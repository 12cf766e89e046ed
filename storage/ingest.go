package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// MaxConflictRetries bounds how often Ingest re-reads and re-folds a batch
// that lost an optimistic-concurrency race before giving up.
const MaxConflictRetries = 16

// Ingest is the write path of one batch, shared by the worker, the CLI and the
// conformance suite: read the latest incidents and applied markers, fold,
// apply; on ErrConflict (another writer got there first) read and fold again.
// After LeaseAfterConflicts conflicts or lease refusals in a row, on a
// store that is a WriteLeaser, it takes the write lease for its next
// attempts (released before it returns), so that a batch cannot lose every
// race to writers that commit back to back. An Apply refused because another
// writer holds the lease (ErrLeased) is retried after a short wait and does
// not count against MaxConflictRetries; the waits for others' leases last
// LeaseWaitLimit at most. The returned int is the number of conflicts.
// The returned result is that of the fold that was applied. now is called
// once per attempt. When Apply fails with ErrUnconfirmed or
// ErrOutcomeUnknown, the result of the fold it wrote (or may have written)
// is returned with the error.
func Ingest(ctx context.Context, s Store, f *dedupe.Folder, events []dedupe.Keyed, now func() time.Time) (res dedupe.Result, attempt int, err error) {
	fps, ids, _ := LookupKeys(events)
	leaser, _ := s.(WriteLeaser)
	held := false
	defer func() {
		if held {
			_ = leaser.ReleaseWrites(context.WithoutCancel(ctx))
		}
	}()
	wait := time.Millisecond
	var leased leaseWait
	refused := 0 // Applies refused by another writer's lease
	for {
		// Contention, lost races or leases of others, makes the batch take
		// the lease itself: waiting on leases alone could let three or more
		// writers that take leases back to back refuse it until the limit.
		if leaser != nil && attempt+refused >= LeaseAfterConflicts {
			if err := takeLease(ctx, leaser); err != nil {
				return dedupe.Result{}, attempt, fmt.Errorf("write lease: %w", err)
			}
			held = true
		}
		snap, err := s.Lookup(ctx, fps, ids)
		if err != nil {
			return dedupe.Result{}, attempt, fmt.Errorf("lookup: %w", err)
		}
		earlier, err := Earlier(ctx, s, snap.Latest, events, nil)
		if err != nil {
			return dedupe.Result{}, attempt, err
		}
		at := now()
		res := f.FoldEarlier(snap.Latest, earlier, snap.Applied, events, at)
		if len(res.EventIDs) == 0 {
			return res, attempt, nil // every event was a duplicate: nothing to write
		}
		err = s.Apply(ctx, Batch{Incidents: res.Incidents, EventIDs: res.EventIDs, At: at})
		if err == nil {
			return res, attempt, nil
		}
		if errors.Is(err, ErrUnconfirmed) || errors.Is(err, ErrOutcomeUnknown) {
			return res, attempt, fmt.Errorf("apply: %w", err)
		}
		if errors.Is(err, ErrLeased) && !held {
			// Another writer has the store for one batch: wait, do not count.
			if err := leased.exceeded(err); err != nil {
				return dedupe.Result{}, attempt, fmt.Errorf("apply: %w", err)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return dedupe.Result{}, attempt, ctx.Err()
			case <-t.C:
			}
			wait = min(2*wait, 50*time.Millisecond)
			refused++
			continue
		}
		if !errors.Is(err, ErrConflict) || attempt >= MaxConflictRetries {
			return dedupe.Result{}, attempt, fmt.Errorf("apply: %w", err)
		}
		attempt++
		if err := ctx.Err(); err != nil {
			return dedupe.Result{}, attempt, err
		}
	}
}

// LookupKeys returns what a Lookup for events asks for: their distinct
// fingerprints (in first-seen order), every event id, and the fingerprints
// as a set.
func LookupKeys(events []dedupe.Keyed) (fps, ids []string, set map[string]struct{}) {
	fps = make([]string, 0, len(events))
	ids = make([]string, 0, len(events))
	set = make(map[string]struct{}, len(events))
	for i := range events {
		if _, ok := set[events[i].Fingerprint]; !ok {
			set[events[i].Fingerprint] = struct{}{}
			fps = append(fps, events[i].Fingerprint)
		}
		ids = append(ids, events[i].Event.ID)
	}
	return fps, ids, set
}

// Earlier reads the incidents dedupe.NeedsEarlier names for events, nil
// when there are none (the common case: one worker never needs them).
// pending, when not nil, holds results not yet written (a pipelined
// writer's batch in flight): an incident it holds is taken from there.
func Earlier(ctx context.Context, s Store, latest map[string]*incident.Incident, events []dedupe.Keyed, pending []*incident.Incident) (map[string]*incident.Incident, error) {
	ids := dedupe.NeedsEarlier(latest, events)
	if len(ids) == 0 {
		return nil, nil
	}
	out := make(map[string]*incident.Incident, len(ids))
	for _, id := range ids {
		if i := slices.IndexFunc(pending, func(in *incident.Incident) bool { return in.ID == id }); i >= 0 {
			out[id] = pending[i]
			continue
		}
		in, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound): // deleted by an operator: the latest takes the event
		case err != nil:
			return nil, fmt.Errorf("read earlier incident: %w", err)
		default:
			out[id] = in
		}
	}
	return out, nil
}
