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
// error wraps ErrConflict). An incident already in state to is no error:
// nothing is written and Changed is false. Errors: ErrNotFound, a
// *incident.TransitionError, ErrConflict, or the store's.
//
// Apply moves an identity's pointer (the incident the fold looks up and
// merges into) to the last incident of that identity in the batch. So when
// id is not the newest incident of its identity (closing an old resolved
// one after a reopen), the newest is written again after it, unchanged but
// for its version, and the pointer stays on it; a concurrent change of the
// newest is then a conflict like any other. A reopen that lands between
// the read and the write when the newest incident is inactive is the one
// change no version check sees: SetState then looks once more and moves
// the pointer on to the reopened incident (see keepPointer).
func SetState(ctx context.Context, s Store, id string, to incident.State, now func() time.Time) (StateChange, error) {
	var in *incident.Incident
	for attempt := 0; ; attempt++ {
		if in == nil {
			var err error
			if in, err = s.Get(ctx, id); err != nil {
				return StateChange{Conflicts: attempt}, err
			}
		}
		at := now()
		up, err := incident.SetState(in, to, at)
		if errors.Is(err, incident.ErrUnchanged) {
			return StateChange{Incident: in, From: in.State, Conflicts: attempt}, nil
		}
		if err != nil {
			return StateChange{Incident: in, From: in.State, Conflicts: attempt}, err
		}
		snap, err := s.Lookup(ctx, []string{in.Fingerprint}, nil)
		if err != nil {
			return StateChange{Conflicts: attempt}, fmt.Errorf("lookup: %w", err)
		}
		l := snap.Latest[in.Fingerprint]
		if l != nil && l.ID == id && l.Version != in.Version && attempt < MaxStateRetries {
			in = l // changed since Get: decide again on what is there now
			continue
		}
		batch := []*incident.Incident{up}
		if l != nil && l.ID != id {
			keep := l.Clone()
			keep.Version++
			batch = append(batch, keep)
		}
		err = s.Apply(ctx, Batch{Incidents: batch, At: at})
		if err == nil {
			if l != nil && !l.Active() {
				if err := keepPointer(ctx, s, in.Fingerprint); err != nil {
					return StateChange{Incident: up, From: in.State, Changed: true, Conflicts: attempt},
						fmt.Errorf("state changed to %s, then checking the identity pointer: %w", to, err)
				}
			}
			return StateChange{Incident: up, From: in.State, Changed: true, Conflicts: attempt}, nil
		}
		if !errors.Is(err, ErrConflict) || attempt >= MaxStateRetries {
			return StateChange{Conflicts: attempt}, fmt.Errorf("apply: %w", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return StateChange{Conflicts: attempt}, err
		}
		in = nil // read again
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

// keepPointer runs after SetState wrote to the identity fp while its newest
// incident, as read, was inactive. A trigger may have reopened that
// incident between the read and the write (a new incident is checked
// against the pointer, an update is not), and the write then moved the
// pointer back from the reopened incident. If an incident reopens whatever the pointer
// names, the end of that reopen chain is written again (its version
// bumped), which moves the pointer on to it; a conflict there means the
// fold or the sweeper just wrote it, and the pointer is looked at again.
func keepPointer(ctx context.Context, s Store, fp string) error {
	for attempt := 0; ; attempt++ {
		snap, err := s.Lookup(ctx, []string{fp}, nil)
		if err != nil {
			return fmt.Errorf("lookup: %w", err)
		}
		at := snap.Latest[fp]
		if at == nil || at.ResolvedAt == nil {
			return nil // gone, or active: nothing reopened it
		}
		// A reopen's last_seen is its opening trigger's time, after the
		// resolved_at of what it reopens: the chain lies at or after that.
		later, err := s.List(ctx, Filter{Fingerprints: []string{fp}, Since: *at.ResolvedAt}, Page{})
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		reopenedBy := make(map[string]*incident.Incident, len(later))
		for _, in := range later {
			reopenedBy[in.ReopenOf] = in
		}
		end := at
		for seen := 0; reopenedBy[end.ID] != nil && seen < len(later); seen++ {
			end = reopenedBy[end.ID]
		}
		if end.ID == at.ID {
			return nil
		}
		moved := end.Clone()
		moved.Version++
		err = s.Apply(ctx, Batch{Incidents: []*incident.Incident{moved}, At: time.Now()})
		if err == nil || !errors.Is(err, ErrConflict) || attempt >= MaxStateRetries {
			return err
		}
	}
}
