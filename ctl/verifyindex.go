package ctl

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// indexes checks Count and a List walk of the whole list and of every
// single-field filter against the records; on a store that can read its
// indexes itself (an indexScanner: Redis) it reads them instead of the
// List walks, each a few hundred entries per command.
func (v *verifier) indexes(ctx context.Context, all []*incident.Incident) error {
	byID := make(map[string]*incident.Incident, len(all))
	for _, in := range all {
		byID[in.ID] = in
	}
	filters := v.filters(all)
	for _, f := range filters {
		if err := v.index(ctx, f, all, byID); err != nil {
			return err
		}
	}
	if sc, ok := v.store.(indexScanner); ok {
		v.checked(fmt.Sprintf("indexes read directly, not with List: %s (every record once, scored by its last_seen) and the index sets of %d single-field filters, against the records",
			sc.OrderKey(), len(filters)-1))
	}
	return nil
}

// filters are the whole list, each state, severity and type, each source
// the records have and active true/false. A source holding a comma is left
// out through the API, which cannot filter on it (with a note).
func (v *verifier) filters(all []*incident.Incident) []storage.Filter {
	filters := []storage.Filter{{}}
	for _, s := range incident.States {
		filters = append(filters, storage.Filter{States: []incident.State{s}})
	}
	for _, s := range incident.Severities {
		filters = append(filters, storage.Filter{Severities: []incident.Severity{s}})
	}
	for _, t := range incident.Types {
		filters = append(filters, storage.Filter{Types: []incident.Type{t}})
	}
	_, viaAPI := v.r.(*api.Client)
	var sources []string
	for _, in := range all {
		if !slices.Contains(sources, in.Source) {
			sources = append(sources, in.Source)
		}
	}
	for _, s := range sources {
		if viaAPI && strings.Contains(s, ",") {
			v.note("source %q holds a comma: the API cannot filter on it (its source parameter is a comma-separated list), so its index is not checked through --api-url; verify the store itself (--state-* or --config) to check it", s)
			continue
		}
		filters = append(filters, storage.Filter{Sources: []string{s}})
	}
	for _, b := range []bool{true, false} {
		filters = append(filters, storage.Filter{Active: &b})
	}
	return filters
}

// index checks one filter: Count, then a List walk that must find exactly
// the records matching it, newest first, none twice, each with a record
// (or, on an indexScanner, a read of the index itself: scanIndex).
func (v *verifier) index(ctx context.Context, f storage.Filter, all []*incident.Incident, byID map[string]*incident.Incident) error {
	name := describe(f)
	want := map[string]bool{}
	for _, in := range all {
		if f.Match(in) {
			want[in.ID] = true
		}
	}
	n, err := v.r.Count(ctx, f)
	switch {
	case err != nil:
		// Through the API a Count reads a page: an index entry without its
		// record fails it. The store itself failing fails a plain Count too.
		if v.store == nil && len(all) == 0 || v.store != nil && v.storeFailing(ctx, f) {
			return fmt.Errorf("verify count %s: %w", name, err)
		}
		v.fail("index %s: Count fails (an index entry without its record?): %v", name, err)
	case n != int64(len(want)):
		v.fail("index %s: Count = %d, records say %d", name, n, len(want))
	}
	if sc, ok := v.store.(indexScanner); ok {
		return v.scanIndex(ctx, sc, f, all, want, byID)
	}
	got := map[string]bool{}
	var prev *incident.Incident
	err = walkChecked(ctx, v.r, f, func(in *incident.Incident) {
		switch {
		case got[in.ID]:
			v.fail("index %s: lists %s twice", name, in.ID)
		case byID[in.ID] == nil:
			v.fail("index %s: lists %s, which is not among the records read", name, in.ID)
		case !want[in.ID]:
			v.fail("index %s: lists %s, whose record does not match", name, in.ID)
		}
		if prev != nil && storage.CompareNewestFirst(prev, in) > 0 {
			v.fail("index %s: lists %s after %s but it is newer", name, in.ID, prev.ID)
		}
		got[in.ID], prev = true, in
	}, func(pos int, err error) {
		v.fail("index %s: List fails at position %d (an index entry without its record?): %v", name, pos, err)
	})
	if err != nil {
		return fmt.Errorf("verify list %s: %w", name, err)
	}
	for _, in := range all {
		if want[in.ID] && !got[in.ID] {
			v.fail("index %s: misses %s", name, in.ID)
		}
	}
	return nil
}

// storeFailing reports whether a store whose Count of f failed fails a
// plain Count too (or f was that plain Count): the store is failing rather
// than one entry.
func (v *verifier) storeFailing(ctx context.Context, f storage.Filter) bool {
	_, err := v.r.Count(ctx, storage.Filter{})
	return err != nil || f.IsZero()
}

// walkChecked lists every incident matching f, a page at a time, calling
// fn for each. A page that fails is read again in halves down to single
// positions, so that an entry the store cannot list (Pebble's List fails
// a whole page on an index entry whose record is missing) is passed to
// broken with its position and the walk goes on past it. When a page had
// such positions and the store then fails a plain Count too, the store is
// failing rather than one entry: the page's error is returned instead.
func walkChecked(ctx context.Context, r api.Reader, f storage.Filter, fn func(*incident.Incident), broken func(pos int, err error)) error {
	for off := 0; ; off += walkPage {
		var bad []badPosition
		page, end, err := readSpan(ctx, r, f, off, walkPage, &bad)
		if err != nil {
			return err
		}
		if len(bad) > 0 && len(page) == 0 {
			// Nothing of the page could be read: the store may be failing
			// rather than one entry. (Through the API a Count reads a page
			// too, so it is only asked when no entry around answered.)
			if _, err := r.Count(ctx, storage.Filter{}); err != nil {
				return fmt.Errorf("%w (and then: count: %w)", bad[0].err, err)
			}
		}
		for _, b := range bad {
			broken(b.pos, b.err)
		}
		for _, in := range page {
			fn(in)
		}
		if end {
			return nil
		}
	}
}

// badPosition is a list position whose List fails on its own.
type badPosition struct {
	pos int
	err error
}

// readSpan lists the n positions from off. A List that fails is split in
// two until the failing positions stand alone; those are added to bad. It
// returns the incidents read and whether the list ended inside the span.
func readSpan(ctx context.Context, r api.Reader, f storage.Filter, off, n int, bad *[]badPosition) ([]*incident.Incident, bool, error) {
	page, err := r.List(ctx, f, storage.Page{Offset: off, Limit: n})
	switch {
	case err == nil:
		return page, len(page) < n, nil
	case ctx.Err() != nil:
		return nil, false, ctx.Err()
	case n == 1:
		*bad = append(*bad, badPosition{off, err})
		return nil, false, nil
	}
	h := n / 2
	first, end, err := readSpan(ctx, r, f, off, h, bad)
	if err != nil || end {
		return first, end, err
	}
	rest, end, err := readSpan(ctx, r, f, off+h, n-h, bad)
	return append(first, rest...), end, err
}

func describe(f storage.Filter) string {
	switch {
	case len(f.States) > 0:
		return "state=" + f.States[0].String()
	case len(f.Severities) > 0:
		return "severity=" + f.Severities[0].String()
	case len(f.Types) > 0:
		return "type=" + f.Types[0].String()
	case len(f.Sources) > 0:
		return "source=" + f.Sources[0]
	case f.Active != nil:
		return fmt.Sprintf("active=%t", *f.Active)
	}
	return "all"
}
