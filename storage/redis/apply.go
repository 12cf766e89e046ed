package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Lookup reads, in one round trip and one consistent snapshot, the latest
// incident of each fingerprint and which event ids were already applied.
func (s *Store) Lookup(ctx context.Context, fingerprints, eventIDs []string) (storage.Snapshot, error) {
	if err := s.check(ctx); err != nil {
		return storage.Snapshot{}, err
	}
	snap := storage.Snapshot{
		Latest:  make(map[string]*incident.Incident, len(fingerprints)),
		Applied: make(map[string]bool),
	}
	if len(fingerprints) == 0 && len(eventIDs) == 0 {
		return snap, nil
	}
	args := make([]any, 0, 3+len(fingerprints)+len(eventIDs))
	args = append(args, s.prefix, len(fingerprints), flag(s.feat.zmscore))
	for _, fp := range fingerprints {
		args = append(args, s.prefix+":identity:"+fp)
	}
	for _, id := range eventIDs {
		args = append(args, id)
	}
	res, err := lookupScript.Run(ctx, s.rdb, s.route(), args...).Slice()
	if err != nil {
		return storage.Snapshot{}, s.wrap("lookup", err)
	}
	if len(res) != len(fingerprints)+len(eventIDs) {
		return storage.Snapshot{}, fmt.Errorf("redis lookup: %d replies for %d keys", len(res), len(fingerprints)+len(eventIDs))
	}
	for i, fp := range fingerprints {
		raw, ok := res[i].(string)
		if !ok {
			continue
		}
		in, err := decode(raw)
		if err != nil {
			return storage.Snapshot{}, err
		}
		snap.Latest[fp] = in
	}
	for j, id := range eventIDs {
		if n, _ := res[len(fingerprints)+j].(int64); n == 1 {
			snap.Applied[id] = true
		}
	}
	if s.waitN > 0 && len(snap.Applied) > 0 {
		if err := s.barrier(ctx); err != nil {
			return storage.Snapshot{}, s.wrap("lookup", err)
		}
	}
	return snap, nil
}

// score is the sorted-set score of a time: unix microseconds, exact in a
// float64 for ±285 years around 1970.
func score(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// Apply writes the batch in one atomic script (markers live for the
// retention from the moment the server writes them, by the server's clock,
// so Batch.At only matters as "now"), or nothing and
// storage.ErrConflict when an incident's stored version is not Version-1 or
// an event id was already applied. Each call has its own attempt key
// (scripts.go): a go-redis retry of a script the server already ran
// answers "ok" and writes nothing, and a call whose answer was lost
// returns storage.ErrOutcomeUnknown until Settle decides it.
func (s *Store) Apply(ctx context.Context, b storage.Batch) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(b.Incidents) == 0 && len(b.EventIDs) == 0 {
		return nil
	}
	args, err := s.applyArgs(b)
	if err != nil {
		if errors.Is(err, storage.ErrConflict) {
			s.conflicts.Inc()
		}
		return err
	}
	ak := s.key("attempt", newToken())
	res, acks, err := s.runApply(ctx, append(args.args, attemptTTL.Milliseconds(), s.token, ak))
	if err != nil {
		return s.applyFailed(ak, err)
	}
	if len(res) == 1 && res[0] == "ok" && acks < s.waitN {
		return fmt.Errorf("redis apply: written on the master but acknowledged by %d of %d replicas within %v: %w", acks, s.waitN, s.waitFor, storage.ErrUnconfirmed)
	}
	switch {
	case len(res) == 2 && res[0] == "leased":
		return fmt.Errorf("redis apply: %w", storage.ErrLeased)
	case len(res) == 3 && res[0] == "conflict":
		s.conflicts.Inc()
		return fmt.Errorf("incident %s: stored version %s: %w", res[1], res[2], storage.ErrConflict)
	case len(res) == 3 && res[0] == "identity":
		s.conflicts.Inc()
		id := "?"
		if k, err := strconv.Atoi(res[1]); err == nil && k >= 0 && k < len(args.ptrs) {
			id = args.ptrs[k].by
		}
		return fmt.Errorf("incident %s: identity now at %q: %w", id, res[2], storage.ErrConflict)
	case len(res) == 2 && res[0] == "applied":
		s.conflicts.Inc()
		return fmt.Errorf("event %s already applied: %w", res[1], storage.ErrConflict)
	case len(res) == 1 && res[0] == "ok":
		return nil
	case len(res) == 1 && res[0] == "abandoned":
		// Only a copy of a call whose answer was lost and that Settle
		// then claimed; Apply itself never sees it.
		return fmt.Errorf("redis apply: the attempt was settled as not written: %w", storage.ErrConflict)
	}
	return fmt.Errorf("redis apply: unexpected reply %q", res)
}

// pointer is the identity pointer of one fingerprint as a batch moves it.
// Only new incidents move pointers (an update never does, see
// storage.Store.Apply), so every pointer of a batch is checked: the
// stored one must name what the first new incident reopens.
type pointer struct {
	fingerprint string
	final       string // id of the batch's last new incident of the fingerprint
	expect, by  string // what the stored pointer must name, for which new incident
}

// rank orders the pointers as applyScript's I section wants them: those
// expecting no pointer, then those expecting one.
func (p pointer) rank() int {
	if p.expect == "" {
		return 0
	}
	return 1
}

// applyCall is applyScript's ARGV and the pointers its I section names.
type applyCall struct {
	args []any
	ptrs []pointer
}

// applyArgs lays out applyScript's ARGV (see there). It does in Go what
// needs no stored data: the order of the sections, the identity pointer
// each fingerprint ends on, the check of a new incident against the
// pointer moves earlier in the same batch (a storage.ErrConflict when they
// disagree), and the index sets of the new incidents.
func (s *Store) applyArgs(b storage.Batch) (applyCall, error) {
	order := make([]*incident.Incident, 0, len(b.Incidents))
	for _, in := range b.Incidents {
		if in.Version == 1 {
			order = append(order, in)
		}
	}
	nnew := len(order)
	for _, in := range b.Incidents {
		if in.Version != 1 {
			order = append(order, in)
		}
	}
	ptrs := make([]pointer, 0, len(b.Incidents))
	at := make(map[string]int, len(b.Incidents))
	checked := 0
	for _, in := range b.Incidents {
		if in.Version != 1 {
			continue // an update never moves its identity's pointer
		}
		i, seen := at[in.Fingerprint]
		switch {
		case !seen:
			at[in.Fingerprint] = len(ptrs)
			ptrs = append(ptrs, pointer{fingerprint: in.Fingerprint, final: in.ID, expect: in.ReopenOf, by: in.ID})
			checked++
			continue
		case ptrs[i].final != in.ReopenOf:
			return applyCall{}, fmt.Errorf("incident %s: identity now at %q: %w", in.ID, ptrs[i].final, storage.ErrConflict)
		}
		ptrs[i].final = in.ID
	}
	// Checked fingerprints first, each part in batch order.
	slices.SortStableFunc(ptrs, func(x, y pointer) int { return x.rank() - y.rank() })
	c0 := 0
	for c0 < len(ptrs) && ptrs[c0].rank() == 0 {
		c0++
	}
	n, nupd := len(order), len(order)-nnew
	args := make([]any, 0, 12+4*n+7*nupd+2*len(ptrs)+checked-c0+len(b.EventIDs)+2*8*nnew)
	args = append(args, s.prefix, s.retention.Milliseconds(), n, nnew, len(ptrs), c0, checked-c0, len(b.EventIDs))
	ng := len(args)
	args = append(args, 0, 0) // the group and singleton counts, known at the end
	args = append(args, s.activeKey(), flag(s.feat.zmscore))
	// One buffer for all records: the slices of it stay valid when it grows.
	buf := make([]byte, 0, 1024*len(order))
	for _, in := range order {
		start := len(buf)
		var err error
		if buf, err = encode(buf, in); err != nil {
			return applyCall{}, err
		}
		args = append(args, s.prefix+":incident:"+in.ID, buf[start:len(buf):len(buf)])
	}
	for _, in := range order {
		args = append(args, score(in.LastSeen), in.ID)
	}
	for _, in := range order[nnew:] {
		args = append(args, `"version":`+strconv.FormatInt(in.Version-1, 10)+"}", in.Fingerprint, in.State.String(),
			in.Severity.String(), in.Source, in.Type.String(), activeFlag(in.State))
	}
	for _, p := range ptrs {
		args = append(args, s.prefix+":identity:"+p.fingerprint)
	}
	for _, p := range ptrs {
		args = append(args, p.final)
	}
	for _, p := range ptrs[c0:checked] {
		args = append(args, p.expect)
	}
	for _, id := range b.EventIDs {
		args = append(args, id)
	}
	// The index sets of the new incidents, one SADD each.
	var keys []string
	sets := make(map[string][]string)
	add := func(key, id string) {
		ids, ok := sets[key]
		if !ok {
			keys = append(keys, key)
		}
		sets[key] = append(ids, id)
	}
	for _, in := range order[:nnew] {
		add(s.prefix+":incidents", in.ID)
		add(s.prefix+":fingerprint:"+in.Fingerprint, in.ID)
		add(s.prefix+":state:"+in.State.String(), in.ID)
		if in.State.Active() {
			add(s.activeKey(), in.ID)
		}
		add(s.prefix+":severity:"+in.Severity.String(), in.ID)
		add(s.prefix+":source:"+in.Source, in.ID)
		add(s.prefix+":type:"+in.Type.String(), in.ID)
	}
	groups := 0
	for _, k := range keys {
		if len(sets[k]) > 1 {
			args = append(args, k, len(sets[k]))
			for _, id := range sets[k] {
				args = append(args, id)
			}
			groups++
		}
	}
	for _, k := range keys {
		if len(sets[k]) == 1 {
			args = append(args, k, sets[k][0])
		}
	}
	args[ng], args[ng+1] = groups, len(keys)-groups
	return applyCall{args: args, ptrs: ptrs}, nil
}

// runApply runs the apply script; with WaitReplicas it pipelines WAIT
// behind it on the same connection (the slot's master in Cluster mode) and
// returns how many replicas acknowledged.
func (s *Store) runApply(ctx context.Context, args []any) ([]string, int, error) {
	if s.waitN <= 0 {
		res, err := applyScript.Run(ctx, s.rdb, s.route(), args...).StringSlice()
		return res, 0, err
	}
	c, err := s.master(ctx)
	if err != nil {
		return nil, 0, err
	}
	for attempt := 0; ; attempt++ {
		pipe := c.Pipeline()
		ev := pipe.EvalSha(ctx, applyScript.Hash(), s.route(), args...)
		w := pipe.Do(ctx, "WAIT", s.waitN, s.waitFor.Milliseconds())
		_, _ = pipe.Exec(ctx)
		if err := ev.Err(); err != nil && attempt == 0 && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := applyScript.Load(ctx, c).Err(); err != nil {
				return nil, 0, err
			}
			continue
		}
		res, err := ev.StringSlice()
		if err != nil {
			return nil, 0, err
		}
		acks, err := w.Int64()
		if err != nil {
			return nil, 0, err
		}
		return res, int(acks), nil
	}
}
