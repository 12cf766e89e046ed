package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// PruneCursor is where the retention walk goes on: the inactive incidents
// with last_seen at or before Until, past the first Skip of them (newest
// first, ties by id descending), which a step before kept. The zero
// cursor starts a walk at the cutoff.
type PruneCursor struct {
	// Until bounds last_seen; zero means the cutoff.
	Until time.Time
	// Skip is how many incidents at Until's time the walk kept already.
	Skip int
}

// Start reports whether c starts a walk: a step that returns it has
// reached the oldest inactive incident.
func (c PruneCursor) Start() bool { return c.Until.IsZero() }

// PruneInactive is one step of the retention walk. It lists up to limit
// inactive incidents (Resolved or Closed) from the cursor on, newest
// first, and deletes those whose last_seen and updated_at are both before
// cutoff, each at the version listed (a concurrent change keeps it). It
// returns how many it deleted and the cursor of the next step, the zero
// cursor when the walk reached the oldest inactive incident (the next step
// starts again from cutoff).
//
// The walk moves by last_seen, not by offset over everything, so the
// incidents it keeps (an operator closed them lately) are passed about
// once per walk, not re-read by every step: only those kept at the time
// the next step starts from are skipped by offset, however many incidents
// share that time.
func PruneInactive(ctx context.Context, s Store, cutoff time.Time, from PruneCursor, limit int) (deleted int, next PruneCursor, err error) {
	want, page, err := ExpiredInactive(ctx, s, cutoff, from, limit)
	if err != nil {
		return 0, PruneCursor{}, err
	}
	if len(want) > 0 {
		if deleted, err = s.DeleteVersions(ctx, want); err != nil {
			return 0, PruneCursor{}, fmt.Errorf("delete expired: %w", err)
		}
	}
	// Were fewer deleted than asked (changed meanwhile), the next step
	// lists a few kept ones again: it finds them changed and goes on.
	return deleted, NextPruneCursor(from, page, limit, want), nil
}

// Lister is the part of a Store ExpiredInactive reads.
type Lister interface {
	List(ctx context.Context, f Filter, p Page) ([]*incident.Incident, error)
}

// ExpiredInactive is PruneInactive's step without the delete: the page it
// lists from the cursor, and the incidents of that page it would delete,
// by id with the version listed. A dry run walks it with NextPruneCursor
// and nothing gone.
func ExpiredInactive(ctx context.Context, s Lister, cutoff time.Time, from PruneCursor, limit int) (want map[string]int64, page []*incident.Incident, err error) {
	until, skip := from.Until, from.Skip
	if until.IsZero() || until.After(cutoff) {
		until, skip = cutoff, 0
	}
	inactive := false
	page, err = s.List(ctx, Filter{Active: &inactive, Until: until}, Page{Offset: skip, Limit: limit})
	if err != nil {
		return nil, nil, fmt.Errorf("list inactive: %w", err)
	}
	want = make(map[string]int64, len(page))
	for _, in := range page {
		if in.LastSeen.Before(cutoff) && in.UpdatedAt.Before(cutoff) && !in.State.Active() {
			want[in.ID] = in.Version
		}
	}
	return want, page, nil
}

// NextPruneCursor is the cursor after a step from from that listed page
// (with limit) and deleted the incidents in gone: the zero cursor when the
// page was the last, else the oldest last_seen of the page, skipping the
// incidents at that time the walk has passed and that are still there
// (with the skip of from when the whole page shares its time).
func NextPruneCursor(from PruneCursor, page []*incident.Incident, limit int, gone map[string]int64) PruneCursor {
	if len(page) < limit || len(page) == 0 {
		return PruneCursor{}
	}
	last := page[len(page)-1].LastSeen
	next := PruneCursor{Until: last}
	if last.Equal(from.Until) {
		next.Skip = from.Skip
	}
	for _, in := range page {
		if _, deleted := gone[in.ID]; in.LastSeen.Equal(last) && !deleted {
			next.Skip++
		}
	}
	return next
}
