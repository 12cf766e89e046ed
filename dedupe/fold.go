package dedupe

import (
	"slices"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// DefaultWindow is the quiet period after which an open incident resolves
// itself (the old system's 900 seconds).
const DefaultWindow = 15 * time.Minute

// Keyed is a decoded event with its fingerprint and what the transport
// knows about it.
type Keyed struct {
	Event       incident.Event
	Fingerprint string
	// Received is when the stream stored the event (zero when unknown). A
	// trigger's becomes the incident's FirstReceivedAt (the earliest wins);
	// an acknowledge or resolve acts only on an incident with an earlier
	// one, or none: see Fold.
	Received time.Time
	// Retry lets the fold defer an acknowledge or resolve that finds no
	// incident to act on (Result.Deferred) instead of ignoring it: the
	// worker redelivers it a moment later, by when another worker may have
	// committed the trigger it follows.
	Retry bool
}

// Stats counts what a fold did, event by event.
type Stats struct {
	Applied      int // events consumed (not duplicates)
	Duplicates   int // events whose id was already applied or seen in the batch
	Opened       int // incidents opened, reopens included
	Reopened     int // incidents opened after a resolved one of the same identity
	Merged       int // triggers merged into an open incident
	Late         int // triggers merged into a resolved incident they predate
	Acknowledged int // Detected → Triaged transitions
	Resolved     int // resolved by a resolve event
	TimedOut     int // resolved by the quiet period
	Orphans      int // acknowledges and resolves with no open incident
	Noops        int // acknowledges of an incident already past Detected
	Deferred     int // acknowledges and resolves with no open incident, left for a retry
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Applied += o.Applied
	s.Duplicates += o.Duplicates
	s.Opened += o.Opened
	s.Reopened += o.Reopened
	s.Merged += o.Merged
	s.Late += o.Late
	s.Acknowledged += o.Acknowledged
	s.Resolved += o.Resolved
	s.TimedOut += o.TimedOut
	s.Orphans += o.Orphans
	s.Noops += o.Noops
	s.Deferred += o.Deferred
}

// Result is what a fold yields: the incidents to write (each with its
// version bumped once), the ids of the events consumed, the counts, and
// the positions (in the folded events) of those deferred, which are not
// consumed: their ids are not in EventIDs.
type Result struct {
	Incidents []*incident.Incident
	EventIDs  []string
	Stats     Stats
	Deferred  []int
}

// Folder folds batches of events into incidents.
type Folder struct {
	window time.Duration
	newID  func() string
}

// NewFolder returns a folder with the given quiet period (DefaultWindow when
// <= 0) and incident id generator.
func NewFolder(window time.Duration, newID func() string) *Folder {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Folder{window: window, newID: newID}
}

// Window returns the quiet period.
func (f *Folder) Window() time.Duration { return f.window }

// Quiet reports whether inc is open and its quiet period ended before t: no
// trigger for more than the window after its last_seen.
func (f *Folder) Quiet(inc *incident.Incident, t time.Time) bool {
	return inc.Active() && t.After(inc.LastSeen.Add(f.window))
}

// Expire returns the timed-out copy of an incident whose quiet period ended
// before now (version bumped, resolved_by "timeout", resolved_at = last_seen
// + window), or false when it is not quiet. The worker's sweeper uses it so
// that incidents with no further events do not stay open forever; the result
// is the same as the next event would have produced.
func (f *Folder) Expire(inc *incident.Incident, now time.Time) (*incident.Incident, bool) {
	if !f.Quiet(inc, now) {
		return nil, false
	}
	c := *inc
	c.Version++
	c.UpdatedAt = now
	f.timeout(&c)
	return &c, true
}

func (f *Folder) timeout(inc *incident.Incident) {
	at := inc.LastSeen.Add(f.window)
	inc.State, inc.ResolvedAt, inc.ResolvedBy = incident.Resolved, &at, incident.ResolvedByTimeout
}

// Fold applies events, in order, to latest (the newest incident per
// fingerprint, as the store returned it; it is not modified) skipping the
// event ids in applied and ids repeated within the batch. now stamps
// created_at and updated_at.
//
// An acknowledge or resolve acts on its identity's open incident unless
// that incident's FirstReceivedAt is not before the event's Received: its
// triggers all reached the stream after the acknowledge or resolve, which
// was therefore, in stream order, about no incident (several workers share
// the stream, and one may commit a trigger before another commits the
// resolve that preceded it). With no incident to act on, the event is
// deferred when Retry is set, and counted as an orphan otherwise.
func (f *Folder) Fold(latest map[string]*incident.Incident, applied map[string]bool, events []Keyed, now time.Time) Result {
	return f.FoldEarlier(latest, nil, applied, events, now)
}

// FoldEarlier is Fold, given also earlier: incidents by id that the latest
// ones reopened, as NeedsEarlier names them (see Fold). An event the
// stream received before its identity's latest incident, and before the
// resolve of the incident that one reopened, acts on that earlier incident.
func (f *Folder) FoldEarlier(latest, earlier map[string]*incident.Incident, applied map[string]bool, events []Keyed, now time.Time) Result {
	st := foldState{
		earlier: earlier,
		f:       f,
		now:     now,
		cur:     make(map[string]*incident.Incident, len(events)),
		slab:    make([]incident.Incident, 0, len(events)),
		seen:    make(map[string]struct{}, len(events)),
		res:     Result{EventIDs: make([]string, 0, len(events))},
	}
	for i := range events {
		k := &events[i]
		id := k.Event.ID
		if applied[id] {
			st.res.Stats.Duplicates++
			continue
		}
		n := len(st.seen)
		st.seen[id] = struct{}{}
		if len(st.seen) == n { // repeated within the batch (one hash, not two)
			st.res.Stats.Duplicates++
			continue
		}
		sl := slot{fp: k.Fingerprint}
		if sl.inc, sl.owned = st.cur[sl.fp]; !sl.owned {
			sl.inc = latest[sl.fp]
		}
		st.pickEarlier(k, &sl)
		if st.deferred(k, &sl) {
			st.res.Deferred = append(st.res.Deferred, i)
			st.res.Stats.Deferred++
			continue
		}
		st.res.EventIDs = append(st.res.EventIDs, id)
		st.res.Stats.Applied++
		st.apply(k, &sl)
	}
	return st.res
}

type foldState struct {
	f       *Folder
	earlier map[string]*incident.Incident // by id: incidents the latest reopened, as read
	early   map[string]*incident.Incident // by id: this batch's copies of earlier incidents
	// reopened holds, by id, the incidents this batch's triggers reopened
	// as they were read (not copied: the batch had not changed them), so
	// that a later event of the batch that belongs to one finds it
	// (pickEarlier) as it would in a batch of its own, through earlier.
	reopened map[string]*incident.Incident
	now      time.Time
	cur      map[string]*incident.Incident // fingerprint -> newest incident owned (copied) by this batch
	slab     []incident.Incident           // backing store of the batch's copies: one allocation
	seen     map[string]struct{}
	res      Result
}

// slot is what one event acts on: the newest incident of its identity (nil
// when there is none) and whether this batch already owns a copy of it.
type slot struct {
	fp    string
	inc   *incident.Incident
	owned bool
	early bool // inc is not the identity's latest incident but one it reopened
}

// own returns the batch's copy of the slot's incident, copying it and
// bumping its version on first touch.
func (st *foldState) own(sl *slot) *incident.Incident {
	if sl.owned {
		return sl.inc
	}
	// A shallow copy is enough: the fold replaces pointers, maps and slices
	// rather than writing through them (union reallocates on insert).
	c := st.alloc()
	*c = *sl.inc
	c.Version++
	c.UpdatedAt = st.now
	if sl.early {
		if st.early == nil {
			st.early = map[string]*incident.Incident{}
		}
		st.early[c.ID] = c
	} else {
		st.cur[sl.fp] = c
	}
	st.res.Incidents = append(st.res.Incidents, c)
	sl.inc, sl.owned = c, true
	return c
}

func (st *foldState) apply(k *Keyed, sl *slot) {
	ev := &k.Event
	if sl.inc != nil && st.f.Quiet(sl.inc, ev.OccurredAt) {
		st.f.timeout(st.own(sl))
		st.res.Stats.TimedOut++
	}
	switch ev.Action {
	case incident.Trigger:
		st.trigger(k, sl)
	case incident.Acknowledge:
		if !target(sl.inc, k) {
			st.ackResolved(k, sl)
			return
		}
		if sl.inc.State != incident.Detected {
			st.res.Stats.Noops++
			return
		}
		inc := st.own(sl)
		at := ev.OccurredAt
		inc.State, inc.AcknowledgedAt = incident.Triaged, &at
		st.res.Stats.Acknowledged++
	case incident.Resolve:
		if !target(sl.inc, k) {
			st.res.Stats.Orphans++
			return
		}
		if overtaken(sl.inc, k) {
			st.overtaken(k, sl)
			return
		}
		inc := st.own(sl)
		at := ev.OccurredAt
		inc.State, inc.ResolvedAt, inc.ResolvedBy = incident.Resolved, &at, incident.ResolvedByEvent
		inc.ResolvedReceivedAt = k.Received
		st.res.Stats.Resolved++
	}
}

func (st *foldState) trigger(k *Keyed, sl *slot) {
	ev := &k.Event
	inc := sl.inc
	switch {
	case inc != nil && (inc.Active() || resolvedAfter(inc, k)):
		merge(st.own(sl), k)
		st.res.Stats.Merged++
	case inc != nil && inc.ResolvedAt != nil && !ev.OccurredAt.After(*inc.ResolvedAt):
		inc = st.own(sl)
		last := inc.LastSeen
		merge(inc, k)
		if inc.ResolvedBy == incident.ResolvedByTimeout {
			// Resolved by the quiet period: resolved_at stays last_seen +
			// window, the time the worker judged the incident quiet.
			inc.LastSeen = last
		}
		inc.LateCount++
		st.res.Stats.Late++
	default:
		n := st.open(k)
		if inc != nil {
			n.ReopenOf = inc.ID
			if !sl.owned {
				if st.reopened == nil {
					st.reopened = map[string]*incident.Incident{}
				}
				st.reopened[inc.ID] = inc
			}
			st.res.Stats.Reopened++
		}
		st.res.Stats.Opened++
	}
}

func (st *foldState) open(k *Keyed) *incident.Incident {
	ev := &k.Event
	n := st.alloc()
	*n = incident.Incident{
		ID:              st.f.newID(),
		Fingerprint:     k.Fingerprint,
		DedupKey:        ev.DedupKey,
		State:           incident.Detected,
		PeakSeverity:    ev.Severity,
		Resources:       SortedUnique(ev.Resources),
		FirstSeen:       ev.OccurredAt,
		LastSeen:        ev.OccurredAt,
		CreatedAt:       st.now,
		UpdatedAt:       st.now,
		OccurrenceCount: 1,
		FirstReceivedAt: k.Received,
		LastReceivedAt:  k.Received,
		Version:         1,
	}
	takeChanging(n, ev)
	if prev, ok := st.cur[k.Fingerprint]; ok { // this batch's copy of the incident n reopens
		if st.early == nil {
			st.early = map[string]*incident.Incident{}
		}
		st.early[prev.ID] = prev
	}
	st.cur[k.Fingerprint] = n
	st.res.Incidents = append(st.res.Incidents, n)
	return n
}

// merge folds a trigger into inc; every step is commutative so triggers fold
// in any order to the same incident.
func merge(inc *incident.Incident, k *Keyed) {
	ev := &k.Event
	inc.OccurrenceCount++
	if k.Received.Before(inc.FirstReceivedAt) { // an unknown (zero) time counts as the earliest
		inc.FirstReceivedAt = k.Received
	}
	if k.Received.After(inc.LastReceivedAt) {
		inc.LastReceivedAt = k.Received
	}
	if ev.OccurredAt.Before(inc.FirstSeen) {
		inc.FirstSeen = ev.OccurredAt
	}
	if ev.OccurredAt.After(inc.LastSeen) {
		inc.LastSeen = ev.OccurredAt
	}
	if ev.Severity.MoreSevere(inc.PeakSeverity) {
		inc.PeakSeverity = ev.Severity
	}
	inc.Resources = union(inc.Resources, ev.Resources)
	if c := ev.OccurredAt.Compare(inc.LatestEventAt); c > 0 || (c == 0 && ev.ID > inc.LatestEventID) {
		takeChanging(inc, ev)
	}
}

// takeChanging copies the fields that follow the latest trigger.
func takeChanging(inc *incident.Incident, ev *incident.Event) {
	inc.Title = ev.Title
	inc.Description = ev.Description
	inc.Source = ev.Source
	inc.Type = ev.Type
	inc.Severity = ev.Severity
	inc.Labels = ev.Labels // shared with the event, which the fold never changes
	inc.Unit = ev.Unit
	inc.LastValue = nil
	if ev.Value != nil {
		v := *ev.Value
		inc.LastValue = &v
	}
	inc.LatestEventAt = ev.OccurredAt
	inc.LatestEventID = ev.ID
}

// union merges add into have (both sorted and unique), keeping the first
// incident.MaxIncidentResources in sorted order.
func union(have, add []string) []string {
	if slices.Equal(have, add) { // the common case: decoded resources are sorted and unique
		return have
	}
	for _, r := range add {
		i, found := slices.BinarySearch(have, r)
		if found || i >= incident.MaxIncidentResources {
			continue
		}
		have = slices.Insert(slices.Clip(have), i, r) // never writes the shared array
		if len(have) > incident.MaxIncidentResources {
			have = have[:incident.MaxIncidentResources:incident.MaxIncidentResources]
		}
	}
	return have
}

// alloc hands out incidents from the batch's slab; a batch touches at most
// one incident per event plus one per timeout, and a full slab just grows.
func (st *foldState) alloc() *incident.Incident {
	if len(st.slab) == cap(st.slab) {
		st.slab = make([]incident.Incident, 0, max(16, cap(st.slab)))
	}
	st.slab = st.slab[:len(st.slab)+1]
	return &st.slab[len(st.slab)-1]
}
