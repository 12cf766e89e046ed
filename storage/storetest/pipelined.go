package storetest

import (
	"context"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/storage"
)

// Pipelined writes batches to a store as the worker's pipeline does: batch
// N+1 is looked up and folded, on top of batch N's result
// (storage.Overlay), while batch N is applied; N+1 is applied once N is
// committed. It is for benchmarks with a single writer, which never
// conflicts: a conflict is returned as an error. Call Drain after the last
// Next.
type Pipelined struct {
	Store  storage.Store
	Folder *dedupe.Folder

	prev    dedupe.Result
	applied chan error // the in-flight Apply's outcome, nil when none
}

// Next reads and folds events while the previous batch is applied, then
// starts applying them.
func (p *Pipelined) Next(ctx context.Context, events []dedupe.Keyed) error {
	fps, ids, want := storage.LookupKeys(events)
	snap, err := p.Store.Lookup(ctx, fps, ids)
	if err != nil {
		return err
	}
	storage.Overlay(&snap, p.prev, want, ids)
	at := time.Now()
	res := p.Folder.Fold(snap.Latest, snap.Applied, events, at)
	if err := p.Drain(); err != nil {
		return err
	}
	p.prev = res
	if len(res.EventIDs) > 0 {
		ch := make(chan error, 1)
		p.applied = ch
		go func() {
			ch <- p.Store.Apply(ctx, storage.Batch{Incidents: res.Incidents, EventIDs: res.EventIDs, At: at})
		}()
	}
	return nil
}

// Drain waits for the Apply in flight and returns its error.
func (p *Pipelined) Drain() error {
	if p.applied == nil {
		return nil
	}
	err := <-p.applied
	p.applied = nil
	return err
}
