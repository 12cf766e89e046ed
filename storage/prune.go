package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// PruneInactive is one step of the retention walk. It lists up to limit
// inactive incidents (Resolved or Closed) whose last_seen is at or before
// from, newest first, and deletes those whose last_seen and updated_at are
// both before cutoff, each at the version listed (a concurrent change
// keeps it). It returns how many it deleted and where the next step goes
// on: just below the oldest last_seen listed, or the zero time when the
// walk reached the oldest inactive incident (start again from cutoff).
//
// The walk moves by last_seen, not by offset, so incidents it keeps (an
// operator closed them lately) are passed about once per walk, not re-read
// by every step: the next step starts at the oldest last_seen listed,
// which it lists again with the incidents of the same time left off the
// page. Only when a whole page (limit > 0 incidents) shares one time does
// the walk step below it, leaving the rest of that time to the next walk.
func PruneInactive(ctx context.Context, s Store, cutoff, from time.Time, limit int) (deleted int, next time.Time, err error) {
	want, next, err := ExpiredInactive(ctx, s, cutoff, from, limit)
	if err != nil || len(want) == 0 {
		return 0, next, err
	}
	if deleted, err = s.DeleteVersions(ctx, want); err != nil {
		return 0, time.Time{}, fmt.Errorf("delete expired: %w", err)
	}
	return deleted, next, nil
}

// Lister is the part of a Store ExpiredInactive reads.
type Lister interface {
	List(ctx context.Context, f Filter, p Page) ([]*incident.Incident, error)
}

// ExpiredInactive is PruneInactive's step without the delete: the
// incidents it would delete, by id with the version listed, and where the
// next step goes on. A dry run walks it alone.
func ExpiredInactive(ctx context.Context, s Lister, cutoff, from time.Time, limit int) (want map[string]int64, next time.Time, err error) {
	if from.IsZero() || from.After(cutoff) {
		from = cutoff
	}
	inactive := false
	page, err := s.List(ctx, Filter{Active: &inactive, Until: from}, Page{Limit: limit})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list inactive: %w", err)
	}
	want = make(map[string]int64, len(page))
	for _, in := range page {
		if in.LastSeen.Before(cutoff) && in.UpdatedAt.Before(cutoff) && !in.State.Active() {
			want[in.ID] = in.Version
		}
	}
	if len(page) < limit {
		return want, time.Time{}, nil
	}
	next = page[len(page)-1].LastSeen
	if !next.Before(from) {
		// The whole page shares the bound's time (Redis compares whole
		// microseconds): step below it.
		next = from.Truncate(time.Microsecond).Add(-time.Nanosecond)
	}
	return want, next, nil
}
