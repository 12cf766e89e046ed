package dedupe

import (
	"slices"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// Several workers share one stream, and each commits its own batches: a
// worker may commit an event before another commits one the stream
// received earlier. Triggers fold in any order; acknowledges and resolves
// do not, so the fold compares when the stream received them (Keyed.
// Received) with what an incident records of its triggers
// (FirstReceivedAt) and of its resolve (ResolvedReceivedAt), and acts as
// if the stream had been applied in order:
//
//   - an acknowledge or resolve received before every trigger of the open
//     incident is not about it;
//   - a trigger received before the resolve that closed its incident
//     merges into it as into an open incident (not as a late trigger);
//   - an acknowledge received between the incident's first trigger and its
//     resolve records acknowledged_at on the resolved incident;
//   - a resolve received before the incident's latest trigger
//     (LastReceivedAt) and older than its last_seen was overtaken: applied
//     in order, it would have closed the incident and that trigger opened a
//     new one, Detected. Instead of closing an incident whose alert fired
//     again, it counts as an orphan and the incident stays open; an
//     acknowledgement no later than the resolve belonged to the closed
//     period, so a Triaged incident is Detected again, without it;
//   - an acknowledge or resolve with nothing to act on is deferred when
//     Keyed.Retry is set: the worker redelivers it a moment later, by when
//     the trigger it follows may be committed.
//
// An event received before its identity's latest incident, which reopened
// an earlier one that a resolve received after the event closed, acts on
// that earlier incident (FoldEarlier; the caller reads it, NeedsEarlier
// names it): applied in order, it came while the earlier one was open.
//
// An unknown (zero) receipt time, of an event or of an incident written
// before these times were kept, counts as the earliest.

// receivedBefore reports whether a was received before b, zero first.
func receivedBefore(a, b time.Time) bool {
	return a.IsZero() || (!b.IsZero() && a.Before(b))
}

// openedBefore reports whether inc has a trigger received before k.
func openedBefore(inc *incident.Incident, k *Keyed) bool {
	return k.Received.IsZero() || receivedBefore(inc.FirstReceivedAt, k.Received)
}

// target reports whether inc is the incident an acknowledge or resolve k
// acts on: open, and with a trigger received before k.
func target(inc *incident.Incident, k *Keyed) bool {
	return inc != nil && inc.Active() && openedBefore(inc, k)
}

// overtaken reports whether the resolve k came before, in the stream and
// in event time, a trigger already folded into inc.
func overtaken(inc *incident.Incident, k *Keyed) bool {
	return !k.Received.IsZero() && k.Received.Before(inc.LastReceivedAt) && k.Event.OccurredAt.Before(inc.LastSeen)
}

// overtaken applies an overtaken resolve (see above) to sl's open incident.
func (st *foldState) overtaken(k *Keyed, sl *slot) {
	st.res.Stats.Orphans++
	inc := sl.inc
	if inc.State != incident.Triaged || inc.AcknowledgedAt == nil || inc.AcknowledgedAt.After(k.Event.OccurredAt) {
		return
	}
	inc = st.own(sl)
	inc.State, inc.AcknowledgedAt = incident.Detected, nil
}

// resolvedAfter reports whether inc was resolved by a resolve event that
// the stream received after k.
func resolvedAfter(inc *incident.Incident, k *Keyed) bool {
	return !inc.Active() && inc.ResolvedBy == incident.ResolvedByEvent &&
		!inc.ResolvedReceivedAt.IsZero() && !k.Received.IsZero() && k.Received.Before(inc.ResolvedReceivedAt)
}

// ackResolved applies an acknowledge that found no open incident: one
// received while the resolved incident was still open records
// acknowledged_at (once); any other is an orphan.
func (st *foldState) ackResolved(k *Keyed, sl *slot) {
	inc := sl.inc
	switch {
	case inc == nil || !resolvedAfter(inc, k) || !openedBefore(inc, k):
		st.res.Stats.Orphans++
	case inc.AcknowledgedAt != nil:
		st.res.Stats.Noops++
	default:
		at := k.Event.OccurredAt
		st.own(sl).AcknowledgedAt = &at
		st.res.Stats.Acknowledged++
	}
}

// deferred reports whether k is an acknowledge or resolve to retry later:
// Retry is set and it would find nothing to act on.
func (st *foldState) deferred(k *Keyed, sl *slot) bool {
	if !k.Retry || k.Event.Action == incident.Trigger {
		return false
	}
	inc := sl.inc
	switch {
	case inc == nil:
		return true
	case st.f.Quiet(inc, k.Event.OccurredAt):
		return true // it would time the incident out and find nothing open
	case target(inc, k):
		return false
	case k.Event.Action == incident.Acknowledge:
		return !resolvedAfter(inc, k) || !openedBefore(inc, k)
	}
	return true
}

// NeedsEarlier returns the ids of the incidents FoldEarlier may act on
// besides latest: for each event received before its identity's latest
// incident, and each trigger older than that incident's first_seen, the
// incident the latest reopened. Each id once; none when every event is
// received after its latest incident and no trigger is older than it, as
// with one worker and producers whose events arrive in time order.
func NeedsEarlier(latest map[string]*incident.Incident, events []Keyed) []string {
	var ids []string
	for i := range events {
		k := &events[i]
		inc := latest[k.Fingerprint]
		if inc == nil || inc.ReopenOf == "" || !(receivedBeforeLatest(inc, k) || olderTrigger(inc, k)) {
			continue
		}
		if !slices.Contains(ids, inc.ReopenOf) {
			ids = append(ids, inc.ReopenOf)
		}
	}
	return ids
}

// receivedBeforeLatest reports whether k was received before inc's first
// trigger.
func receivedBeforeLatest(inc *incident.Incident, k *Keyed) bool {
	return !k.Received.IsZero() && k.Received.Before(inc.FirstReceivedAt)
}

// olderTrigger reports whether k is a trigger older than inc's first_seen:
// it may belong to the incident inc reopened.
func olderTrigger(inc *incident.Incident, k *Keyed) bool {
	return k.Event.Action == incident.Trigger && k.Event.OccurredAt.Before(inc.FirstSeen)
}

// pickEarlier points sl at the earlier incident k belongs to, if any: the
// one the latest reopened, when k was received before the latest's first
// trigger and before the resolve that closed the earlier one; or, for a
// trigger, when its time is not after the earlier one's resolved_at (a
// late trigger of that incident, not one of the reopen).
func (st *foldState) pickEarlier(k *Keyed, sl *slot) {
	inc := sl.inc
	if inc == nil || inc.ReopenOf == "" {
		return
	}
	byReceipt, byTime := receivedBeforeLatest(inc, k), olderTrigger(inc, k)
	if !byReceipt && !byTime {
		return
	}
	e, owned := st.early[inc.ReopenOf]
	if !owned {
		if e = st.earlier[inc.ReopenOf]; e == nil {
			if e = st.reopened[inc.ReopenOf]; e == nil {
				return
			}
		}
	}
	late := byTime && e.ResolvedAt != nil && !k.Event.OccurredAt.After(*e.ResolvedAt)
	if !(byReceipt && resolvedAfter(e, k)) && !late {
		return
	}
	sl.inc, sl.owned, sl.early = e, owned, true
}
