package ctl

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// walkPage is the page size of walk (the API's maximum).
const walkPage = api.MaxLimit

// walk calls fn for every incident of r, newest last_seen first. It pages
// by last_seen (keyset: until = the last one seen, skipping those already
// returned at that instant), so it stays linear on large stores and works
// through the API's 1000-per-page limit. Incidents updated during the walk
// may be missed or seen twice: walk a stopped worker for an exact copy.
func walk(ctx context.Context, r api.Reader, fn func(*incident.Incident) error) error {
	var f storage.Filter
	offset := 0
	for {
		page, err := r.List(ctx, f, storage.Page{Offset: offset, Limit: walkPage})
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, in := range page {
			if err := fn(in); err != nil {
				return err
			}
		}
		if len(page) < walkPage {
			return nil
		}
		last := page[len(page)-1].LastSeen
		if !f.Until.IsZero() && last.Equal(f.Until) {
			offset += len(page)
			continue
		}
		f.Until, offset = last, 0
		for _, in := range page {
			if in.LastSeen.Equal(last) {
				offset++
			}
		}
	}
}

// listAll collects every incident of r through List, newest first: what
// verify checks.
func listAll(ctx context.Context, r api.Reader) ([]*incident.Incident, error) {
	var all []*incident.Incident
	err := walk(ctx, r, func(in *incident.Incident) error {
		all = append(all, in)
		return nil
	})
	return all, err
}

// readAll collects every incident of r with its Scan, which misses none
// however busy the writers, and orders them newest last_seen first (id
// descending on ties), as List would. A worker too old to serve the export
// endpoint is read through List pages instead, with a warning on warn.
func readAll(ctx context.Context, r api.Reader, warn io.Writer) ([]*incident.Incident, error) {
	var all []*incident.Incident
	err := r.Scan(ctx, func(in *incident.Incident) error {
		all = append(all, in)
		return nil
	})
	if errors.Is(err, api.ErrExportUnsupported) {
		fmt.Fprintf(warn, "warning: the worker has no %s (an older build): reading it page by page, which misses incidents updated meanwhile; stop it for an exact copy\n", api.ExportPath)
		return listAll(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *incident.Incident) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return all, nil
}

// writeIncidents writes incidents as JSON lines, or as one JSON array.
func writeIncidents(w io.Writer, all []*incident.Incident, array bool) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if array {
		bw.WriteString("[")
	}
	for i, in := range all {
		if array && i > 0 {
			bw.WriteString(",")
		}
		if err := enc.Encode(incident.NewView(in)); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if array {
		bw.WriteString("]\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// importResult says what importInto wrote.
type importResult struct {
	Written int `json:"written"`
	// Relinked counts incidents whose reopen_of named an incident missing
	// from the source; they were linked to the previous incident of their
	// identity instead.
	Relinked int `json:"relinked"`
}

// importBatch is how many incidents go into one Apply.
const importBatch = 256

// importInto writes incidents to an empty target through Apply. Apply only
// creates incidents at Version 1 (storage.Store has no way to write a
// record with its version), so versions restart at 1; every other field,
// reopen_of included, is kept. The incidents of one identity are written
// in reopen order (following reopen_of), which is what Apply's identity
// pointer check expects; the newest of an identity ends as its current
// one. Applied-event markers are not copied.
func importInto(ctx context.Context, target storage.Store, all []*incident.Incident, now time.Time) (importResult, error) {
	var res importResult
	n, err := target.Count(ctx, storage.Filter{})
	if err != nil {
		return res, fmt.Errorf("target count: %w", err)
	}
	if n > 0 {
		return res, fmt.Errorf("target store is not empty (%d incidents): import and migrate only write into an empty store", n)
	}
	ordered, relinked := reopenOrder(all)
	res.Relinked = relinked
	for lo := 0; lo < len(ordered); lo += importBatch {
		hi := min(lo+importBatch, len(ordered))
		b := storage.Batch{At: now, Incidents: ordered[lo:hi]}
		if err := target.Apply(ctx, b); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return res, fmt.Errorf("write incidents %d..%d: %w (duplicate ids, or two incidents of one identity both active?)", lo, hi, err)
			}
			return res, fmt.Errorf("write incidents %d..%d: %w", lo, hi, err)
		}
		res.Written = hi
	}
	if err := target.Flush(ctx); err != nil {
		return res, fmt.Errorf("target flush: %w", err)
	}
	return res, nil
}

// reopenOrder returns copies of all at Version 1, each identity's incidents
// consecutive and in reopen order (identityOrder): the first has no
// reopen_of, each next one reopens the previous. An incident whose
// predecessor is missing continues the chain (its reopen_of rewritten) and
// is counted.
func reopenOrder(all []*incident.Incident) ([]*incident.Incident, int) {
	out := make([]*incident.Incident, 0, len(all))
	relinked := 0
	for _, group := range identityOrder(all) {
		prev := ""
		for _, in := range group {
			c := in.Clone()
			c.Version = 1
			if c.ReopenOf != prev {
				c.ReopenOf = prev
				relinked++
			}
			out = append(out, c)
			prev = c.ID
		}
	}
	return out, relinked
}

// identityOrder groups all by fingerprint (in first-seen order) and puts
// each group in the order importInto writes it, the last one ending as the
// identity's current incident: the reopen_of chain from its root, then
// whatever it does not reach (orphans, forks) in creation order. It does
// not copy or change the incidents.
func identityOrder(all []*incident.Incident) [][]*incident.Incident {
	byFP := map[string][]*incident.Incident{}
	var fps []string
	for _, in := range all {
		if _, ok := byFP[in.Fingerprint]; !ok {
			fps = append(fps, in.Fingerprint)
		}
		byFP[in.Fingerprint] = append(byFP[in.Fingerprint], in)
	}
	groups := make([][]*incident.Incident, 0, len(fps))
	for _, fp := range fps {
		group := byFP[fp]
		slices.SortFunc(group, func(a, b *incident.Incident) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.ID, b.ID))
		})
		next := map[string][]*incident.Incident{}
		ids := map[string]bool{}
		for _, in := range group {
			ids[in.ID] = true
		}
		for _, in := range group {
			if in.ReopenOf == "" || ids[in.ReopenOf] {
				next[in.ReopenOf] = append(next[in.ReopenOf], in)
			}
		}
		ordered := make([]*incident.Incident, 0, len(group))
		// Follow the chain from the root; whatever is not reached (orphans,
		// forks) continues it in creation order.
		done := map[string]bool{}
		for cur := ""; ; {
			succ := next[cur]
			if len(succ) == 0 || done[succ[0].ID] {
				break
			}
			ordered = append(ordered, succ[0])
			done[succ[0].ID] = true
			cur = succ[0].ID
		}
		for _, in := range group {
			if !done[in.ID] {
				ordered = append(ordered, in)
				done[in.ID] = true
			}
		}
		groups = append(groups, ordered)
	}
	return groups
}
