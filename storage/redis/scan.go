package redis

import (
	"context"
	"fmt"

	"github.com/llm-im/incidentd/incident"
)

// scanCount is the COUNT hint of each SSCAN step: about that many ids, and
// one MGET of their records, per round trip.
const scanCount = 512

// Scan calls fn for every incident: it walks the all-incidents set with
// SSCAN and reads each step's records with one MGET. Redis guarantees that
// SSCAN returns every member present for the whole walk at least once; ids
// it returns again are skipped (the walk keeps the ids seen, about 100
// bytes each), so each incident is passed once, as it is when its step
// reads it. There is no snapshot across steps: an incident created or
// deleted during the walk may or may not appear. It stops at fn's first
// error and returns it.
func (s *Store) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	seen := make(map[string]struct{})
	var cursor uint64
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		ids, next, err := s.rdb.SScan(ctx, s.key("incidents"), cursor, "", scanCount).Result()
		if err != nil {
			return s.wrap("sscan", err)
		}
		keys := make([]string, 0, len(ids))
		for _, id := range ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				keys = append(keys, s.key("incident", id))
			}
		}
		if len(keys) > 0 {
			if err := s.scanRecords(ctx, keys, fn); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// scanRecords reads the records of keys with one MGET and passes each to
// fn; a record deleted since its id was read is skipped.
func (s *Store) scanRecords(ctx context.Context, keys []string, fn func(*incident.Incident) error) error {
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return s.wrap("mget", err)
	}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		in, err := decode(raw)
		if err != nil {
			return fmt.Errorf("redis record %s: %w", keys[i], err)
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}
