package memory

import (
	"container/heap"
	"slices"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// newestFirst orders found as List returns it. When the page ends well
// before the end of found, only its first Offset+Limit incidents are
// selected (with a bounded heap) and ordered; the rest is dropped, so the
// page's window over the result is the same.
func newestFirst(found []*incident.Incident, p storage.Page) []*incident.Incident {
	k := max(p.Offset, 0) + p.Limit
	if p.Limit <= 0 || k*4 > len(found) {
		slices.SortFunc(found, storage.CompareNewestFirst)
		return found
	}
	h := make(oldestOnTop, 0, k+1)
	for _, in := range found {
		if len(h) < k {
			heap.Push(&h, in)
		} else if storage.CompareNewestFirst(in, h[0]) < 0 {
			h[0] = in
			heap.Fix(&h, 0)
		}
	}
	slices.SortFunc(h, storage.CompareNewestFirst)
	return h
}

// oldestOnTop is a heap whose root is the incident List would return last.
type oldestOnTop []*incident.Incident

func (h oldestOnTop) Len() int           { return len(h) }
func (h oldestOnTop) Less(i, j int) bool { return storage.CompareNewestFirst(h[i], h[j]) > 0 }
func (h oldestOnTop) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *oldestOnTop) Push(x any)        { *h = append(*h, x.(*incident.Incident)) }
func (h *oldestOnTop) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
