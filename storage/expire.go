package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// ExpireQuiet resolves, by timeout, up to limit open incidents whose quiet
// period ended before now, in one atomic Apply. Losing a race with a writer
// (ErrConflict) is not an error: those incidents are looked at again on the
// next call. It returns how many incidents it resolved.
func ExpireQuiet(ctx context.Context, s Store, f *dedupe.Folder, now time.Time, limit int) (int, error) {
	active := true
	open, err := s.List(ctx, Filter{Active: &active, Until: now.Add(-f.Window())}, Page{Limit: limit})
	if err != nil {
		return 0, fmt.Errorf("list quiet: %w", err)
	}
	expired := make([]*incident.Incident, 0, len(open))
	for _, in := range open {
		if c, ok := f.Expire(in, now); ok {
			expired = append(expired, c)
		}
	}
	if len(expired) == 0 {
		return 0, nil
	}
	err = s.Apply(ctx, Batch{Incidents: expired, At: now})
	if errors.Is(err, ErrConflict) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("apply expiry: %w", err)
	}
	return len(expired), nil
}
