package redis

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// group is one filter field: its index name and the values OR-ed together.
type group struct {
	field  string
	values []string
}

func names[T interface{ String() string }](vs []T) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

// groups turns a filter into index groups (AND across, OR within), each
// value once.
func groups(f storage.Filter) []group {
	var gs []group
	add := func(field string, values []string) {
		if len(values) > 0 {
			slices.Sort(values)
			gs = append(gs, group{field, slices.Compact(values)})
		}
	}
	add("state", names(f.States))
	switch {
	case f.Active != nil && *f.Active:
		// prefix:state:Active, kept by every write: one set, so Count is
		// its SCARD, instead of a union of four.
		add("state", []string{"Active"})
	case f.Active != nil:
		var st []incident.State
		for _, s := range incident.States {
			if !s.Active() {
				st = append(st, s)
			}
		}
		add("state", names(st))
	}
	add("severity", names(f.Severities))
	add("source", slices.Clone(f.Sources))
	add("type", names(f.Types))
	add("fingerprint", slices.Clone(f.Fingerprints))
	return gs
}

// bounds are the score range of Since and Until: last_seen has microsecond
// precision, so Since rounds up and Until down to a whole microsecond.
func bounds(f storage.Filter) (lo, hi string) {
	lo, hi = "-inf", "+inf"
	if !f.Since.IsZero() {
		us := f.Since.UnixMicro()
		if f.Since.After(time.UnixMicro(us)) {
			us++
		}
		lo = strconv.FormatInt(us, 10)
	}
	if !f.Until.IsZero() {
		us := f.Until.UnixMicro()
		if f.Until.Before(time.UnixMicro(us)) {
			us--
		}
		hi = strconv.FormatInt(us, 10)
	}
	return lo, hi
}

func (s *Store) queryArgs(mode string, f storage.Filter, p storage.Page, readOnly bool) []any {
	lo, hi := bounds(f)
	gs := groups(f)
	limit := p.Limit
	if limit <= 0 || limit > math.MaxInt32 {
		limit = 0
	}
	args := []any{s.prefix, mode, lo, hi, max(p.Offset, 0), limit, s.budget, len(gs), flag(s.feat.sintercard), flag(readOnly)}
	for _, g := range gs {
		args = append(args, g.field, len(g.values))
		for _, v := range g.values {
			args = append(args, v)
		}
	}
	return args
}

// query runs queryScript. Where Redis refuses its scratch keys (a
// read-only replica, an ACL user that may only read, a full server with
// noeviction) it runs it again in read-only mode, which answers the same
// without them, and keeps to that mode for a while (readOnlyQueries).
func (s *Store) query(ctx context.Context, mode string, f storage.Filter, p storage.Page) *goredis.Cmd {
	if s.readOnly.active(time.Now()) {
		return queryScript.Run(ctx, s.rdb, s.route(), s.queryArgs(mode, f, p, true)...)
	}
	cmd := queryScript.Run(ctx, s.rdb, s.route(), s.queryArgs(mode, f, p, false)...)
	reason := refusal(cmd.Err())
	if reason == "" {
		return cmd
	}
	s.readOnly.refused(reason, cmd.Err(), time.Now())
	return queryScript.Run(ctx, s.rdb, s.route(), s.queryArgs(mode, f, p, true)...)
}

// List returns the incidents matching f, newest last_seen first, id
// descending on ties (the sorted sets' own order), paged on the server.
func (s *Store) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	res, err := s.query(ctx, "list", f, p).Slice()
	if err != nil {
		return nil, s.wrap("list", err)
	}
	out := make([]*incident.Incident, 0, len(res))
	for _, r := range res {
		raw, ok := r.(string)
		if !ok {
			continue
		}
		in, err := decode(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Count returns how many incidents match f, counted on the server.
func (s *Store) Count(ctx context.Context, f storage.Filter) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n, err := s.query(ctx, "count", f, storage.Page{}).Int64()
	if err != nil {
		return 0, s.wrap("count", err)
	}
	return n, nil
}
