package incident

import (
	"errors"
	"fmt"
	"time"
)

// OperatorTargets are the states an operator may set (SetState): every
// state but Detected, which only a new incident starts in.
var OperatorTargets = []State{Triaged, Investigating, Remediating, Resolved, Closed}

// ErrUnchanged is SetState's answer when the incident already is in the
// state asked for: nothing to write. Callers treat it as success (a repeated
// or retried request changes nothing).
var ErrUnchanged = errors.New("incident: already in that state")

// TransitionError is an operator state change the lifecycle refuses.
type TransitionError struct {
	ID       string
	From, To State
	// Reason says why, e.g. "Closed is final".
	Reason string
}

// Error returns `incident "<id>": <from> -> <to> is not allowed: <reason>`.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("incident %q: %s -> %s is not allowed: %s", e.ID, e.From, e.To, e.Reason)
}

// SetState applies an operator's state change to in at now and returns the
// updated copy (Version+1, UpdatedAt = now; in is not modified), or an
// error: ErrUnchanged when in already is in state to, a *TransitionError
// when the lifecycle refuses the change. The rules:
//
//   - from an active state (Detected, Triaged, Investigating, Remediating)
//     to Triaged, Investigating or Remediating; leaving Detected records
//     acknowledged_at = now unless it is set (an acknowledge event sets it
//     to its own time);
//   - from an active state to Resolved: resolved_at = now, resolved_by =
//     operator; to Closed: the same, and the state Closed;
//   - from Resolved to Closed: resolved_at and resolved_by stay what they
//     were (the resolution already happened);
//   - nothing else: Detected is no target, Closed is final, and a Resolved
//     incident does not become active again (a later trigger opens a new
//     incident with reopen_of, as after any resolution).
//
// The result passes Validate when in does. The fold treats it as any
// other incident: an operator's resolved_at is compared with event times
// like a resolve event's (a trigger after it reopens, one not after it is
// late), and the quiet-period timeout still resolves an incident an
// operator moved to Investigating or Remediating (they are active).
func SetState(in *Incident, to State, now time.Time) (*Incident, error) {
	if !to.Valid() {
		return nil, fmt.Errorf("incident: invalid state %d", uint8(to))
	}
	from := in.State
	if from == to {
		return nil, ErrUnchanged
	}
	refuse := func(reason string) error {
		return &TransitionError{ID: in.ID, From: from, To: to, Reason: reason}
	}
	switch {
	case !from.Valid():
		return nil, refuse("unknown current state")
	case to == Detected:
		return nil, refuse("Detected is only the state a new incident starts in")
	case from == Closed:
		return nil, refuse("Closed is final")
	case !from.Active() && to.Active():
		return nil, refuse("a resolved incident does not become active again: the next trigger after its resolved_at opens a new incident (reopen_of)")
	}
	now = now.UTC()
	c := in.Clone()
	c.State = to
	c.Version++
	c.UpdatedAt = now
	switch {
	case to.Active():
		if from == Detected && c.AcknowledgedAt == nil {
			at := now
			c.AcknowledgedAt = &at
		}
	case from.Active(): // to Resolved or Closed
		at := now
		c.ResolvedAt, c.ResolvedBy = &at, ResolvedByOperator
	}
	// from Resolved to Closed: resolved_at and resolved_by stay.
	return c, nil
}
