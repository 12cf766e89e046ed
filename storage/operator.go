package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// MaxStateRetries bounds how often SetState reads an incident again after
// a concurrent writer (the fold, the sweeper, another operator) changed it
// between its read and its write.
const MaxStateRetries = 10

// StateChange is what SetState did.
type StateChange struct {
	// Incident is the incident as stored when SetState returned.
	Incident *incident.Incident
	// From is its state before the change.
	From incident.State
	// Changed is false when it already was in the state asked for.
	Changed bool
	// Conflicts counts the concurrent writes SetState read again after.
	Conflicts int
}

// SetState is an operator's state change of the incident id: read it, apply
// incident.SetState at now(), write it through the store's optimistic
// concurrency (the stored version must still be the one read), and on
// ErrConflict read and decide again, at most MaxStateRetries times (then the
// error wraps ErrConflict); a write refused because a pod holds the write
// lease (ErrLeased: one batch, or a few seconds after its pod died) is
// tried again until the lease ends or ctx does (LeaseWaitLimit at most),
// not counted. An incident
// already in state to is no error:
// nothing is written and Changed is false. Errors: ErrNotFound, a
// *incident.TransitionError, ErrConflict, or the store's.
//
// The write is an update, and an update never moves the identity pointer
// (see Store.Apply): closing an older resolved incident after a reopen, or
// racing one, leaves the identity on its newest incident.
func SetState(ctx context.Context, s Store, id string, to incident.State, now func() time.Time) (StateChange, error) {
	var leased leaseWait
	for attempt := 0; ; attempt++ {
		in, err := s.Get(ctx, id)
		if err != nil {
			return StateChange{Conflicts: attempt}, err
		}
		at := now()
		up, err := incident.SetState(in, to, at)
		if errors.Is(err, incident.ErrUnchanged) {
			return StateChange{Incident: in, From: in.State, Conflicts: attempt}, nil
		}
		if err != nil {
			return StateChange{Incident: in, From: in.State, Conflicts: attempt}, err
		}
		err = s.Apply(ctx, Batch{Incidents: []*incident.Incident{up}, At: at})
		if err == nil {
			return StateChange{Incident: up, From: in.State, Changed: true, Conflicts: attempt}, nil
		}
		if errors.Is(err, ErrLeased) {
			if err := leased.exceeded(err); err != nil {
				return StateChange{Conflicts: attempt}, fmt.Errorf("apply: %w", err)
			}
			if err := backoff(ctx, 5); err != nil {
				return StateChange{Conflicts: attempt}, err
			}
			attempt--
			continue
		}
		if !errors.Is(err, ErrConflict) || attempt >= MaxStateRetries {
			return StateChange{Conflicts: attempt}, fmt.Errorf("apply: %w", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return StateChange{Conflicts: attempt}, err
		}
	}
}

// backoff waits a random time up to 1 ms << attempt (at most 128 ms), so
// that a retry does not meet the same writer at the same point again.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 7)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
