package ctl

import (
	"hash/maphash"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
)

// eventSource yields loadgen events and remembers which event ids it has
// produced (as hashes, to keep the publisher's memory out of the worker's
// RSS figure). loadgen keeps every fresh event to draw duplicates from, so
// with chunk > 0 a fresh generator (next seed, new id prefix) takes over
// every chunk events, bounding that memory.
type eventSource struct {
	cfg   loadgen.Config
	chunk int
	n     int
	g     *loadgen.Generator
	seed  maphash.Seed
	ids   map[uint64]struct{}
}

func newEventSource(cfg loadgen.Config) *eventSource {
	return &eventSource{cfg: cfg, seed: maphash.MakeSeed(), ids: map[uint64]struct{}{}}
}

func (s *eventSource) next() incident.Event {
	if s.g == nil || (s.chunk > 0 && s.n%s.chunk == 0) {
		s.cfg.Seed++
		s.g = loadgen.New(s.cfg)
	}
	s.n++
	ev := s.g.Next()
	s.ids[maphash.String(s.seed, ev.ID)] = struct{}{}
	return ev
}

// release drops the current generator and its history; later events come
// from fresh generators of chunk events each.
func (s *eventSource) release(chunk int) {
	s.g, s.n, s.chunk = nil, 0, chunk
}

func (s *eventSource) distinct() int64 { return int64(len(s.ids)) }
