package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/llm-im/incidentd/storage"
)

// errNotSingleField is ScanIndex's answer to a filter that no index set
// stands for alone.
var errNotSingleField = errors.New("not a filter on one field")

// indexKeys returns the keys of the sets behind f, a filter on one field
// without time bounds (a state, severity, source, type or fingerprint, or
// Active): prefix:field:value for each value, prefix:state:Active for
// Active true and the sets of the states that are not active for Active
// false, as List and Count read them.
func (s *Store) indexKeys(f storage.Filter) ([]string, error) {
	gs := groups(f)
	if len(gs) != 1 || !f.Since.IsZero() || !f.Until.IsZero() {
		return nil, errNotSingleField
	}
	keys := make([]string, 0, len(gs[0].values))
	for _, v := range gs[0].values {
		keys = append(keys, s.key(gs[0].field, v))
	}
	return keys, nil
}

// ScanIndex calls fn for every id the index sets of f hold (indexKeys),
// read with SSCAN a few hundred ids per command on the master of the
// deployment's slot, so that no command blocks Redis for long however
// large the sets are. An id may come more than once. A key that is not a
// set fails it with Redis's WRONGTYPE error, naming the key.
func (s *Store) ScanIndex(ctx context.Context, f storage.Filter, fn func(id string)) error {
	keys, err := s.indexKeys(f)
	if err != nil {
		return fmt.Errorf("redis index: %w", err)
	}
	c, err := s.master(ctx)
	if err != nil {
		return s.wrap("sscan", err)
	}
	for _, key := range keys {
		if err := s.sscan(ctx, c, key, fn); err != nil {
			return s.wrap("sscan "+key, err)
		}
	}
	return nil
}

// OrderKey is the sorted set that orders List newest first:
// prefix:z:incidents, scored by last_seen in unix microseconds.
func (s *Store) OrderKey() string { return s.key("z", "incidents") }

// ScanOrder calls fn for every member of the sorted set that orders List
// (OrderKey) with its score, read with ZSCAN a few hundred members per
// command on the master of the deployment's slot. A member may come more
// than once.
func (s *Store) ScanOrder(ctx context.Context, fn func(id string, score float64)) error {
	c, err := s.master(ctx)
	if err != nil {
		return s.wrap("zscan", err)
	}
	key := s.OrderKey()
	var cursor uint64
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		pairs, next, err := c.ZScan(ctx, key, cursor, "", scanCount).Result()
		if err != nil {
			return s.wrap("zscan "+key, err)
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			sc, err := strconv.ParseFloat(strings.TrimSpace(pairs[i+1]), 64)
			if err != nil {
				return fmt.Errorf("redis zscan %s: score of %s: %w", key, pairs[i], err)
			}
			fn(pairs[i], sc)
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
