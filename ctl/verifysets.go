package ctl

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// indexScanner is a store that can read the indexes behind List itself, a
// few hundred entries per command: the Redis store, whose List deep into a
// filter matching most incidents falls back to an intersection of every
// incident that blocks the server for seconds per page. verify reads these
// indexes instead of walking List through each filter.
type indexScanner interface {
	// ScanIndex calls fn for each id the index of f, a filter on one
	// field, holds; an id may come more than once.
	ScanIndex(ctx context.Context, f storage.Filter, fn func(id string)) error
	// ScanOrder calls fn for each member of the index that orders the
	// whole list (OrderKey) with its score, last_seen in unix
	// microseconds; a member may come more than once.
	ScanOrder(ctx context.Context, fn func(id string, score float64)) error
	// OrderKey names that index.
	OrderKey() string
}

// scanIndex checks the index of f, read with sc, against the records: the
// whole list's order index must hold every record once, scored by its
// last_seen, and a filter's index exactly the records matching f, none
// without a record. Its FAIL lines are those of a List walk.
func (v *verifier) scanIndex(ctx context.Context, sc indexScanner, f storage.Filter, all []*incident.Incident, want map[string]bool, byID map[string]*incident.Incident) error {
	name := describe(f)
	got := make(map[string]bool, len(want))
	// first reports an id the index holds the first time it comes, and
	// whether it was the first.
	first := func(id string) bool {
		if got[id] {
			return false
		}
		got[id] = true
		switch {
		case byID[id] == nil:
			v.fail("index %s: lists %s, which is not among the records read", name, id)
		case !want[id]:
			v.fail("index %s: lists %s, whose record does not match", name, id)
		}
		return true
	}
	var err error
	if f.IsZero() {
		key := sc.OrderKey()
		err = sc.ScanOrder(ctx, func(id string, score float64) {
			in := byID[id]
			if first(id) && in != nil && score != float64(in.LastSeen.UnixMicro()) {
				v.fail("index %s: %s scores %s at %s, its last_seen is %d (unix µs, the score List orders by)",
					name, key, id, strconv.FormatFloat(score, 'f', -1, 64), in.LastSeen.UnixMicro())
			}
		})
	} else {
		err = sc.ScanIndex(ctx, f, func(id string) { first(id) })
	}
	if err != nil {
		if ctx.Err() != nil || v.storeFailing(ctx, f) {
			return fmt.Errorf("verify index %s: %w", name, err)
		}
		v.fail("index %s: cannot be read: %v", name, err)
		return nil
	}
	for _, in := range all {
		if want[in.ID] && !got[in.ID] {
			v.fail("index %s: misses %s", name, in.ID)
		}
	}
	return nil
}

// unscanned is what a List walk of the whole list finds and the records
// read (seen) lack, on a store that reads its order index itself: the ids
// of the order index not among seen whose records Get reads, newest first.
// An id without a record is left to the index check of the whole list.
func unscanned(ctx context.Context, r api.Reader, sc indexScanner, seen map[string]bool) ([]*incident.Incident, error) {
	var ids []string
	err := sc.ScanOrder(ctx, func(id string, _ float64) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	})
	if err != nil {
		return nil, err
	}
	found := make([]*incident.Incident, len(ids))
	parallel(len(ids), func(i int) { found[i], _ = r.Get(ctx, ids[i]) })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	missed := slices.DeleteFunc(found, func(in *incident.Incident) bool { return in == nil })
	slices.SortFunc(missed, storage.CompareNewestFirst)
	return missed, nil
}
