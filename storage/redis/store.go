// Package redis is the storage backend for Redis, Redis Sentinel and Redis
// Cluster: the last stage of the pipeline when several worker pods share one
// Redis deployment. Every batch is one atomic, version-checked Lua script
// (the merge rules stay in Go, in dedupe.Folder via storage.Ingest); reads
// of a batch are one round trip; queries intersect the index sets on the
// server and page newest first over sorted sets. The key layout follows the
// reference guide (llm-im:incident:{id}, llm-im:severity:P0, ...); in
// Cluster mode the prefix becomes a hash tag ({llm-im}:...) so that a batch
// and every set a query intersects share one slot.
package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Store is a storage.Store on Redis. All methods are safe for concurrent
// use, and any number of Stores (in any number of processes) may share one
// keyspace.
type Store struct {
	rdb       goredis.UniversalClient
	prefix    string // key prefix, "{prefix}" in Cluster mode
	retention time.Duration
	waitN     int
	waitFor   time.Duration
	budget    int // queryBudget; tests lower it to reach the fallback
	feat      features
	log       *zap.Logger
	conflicts prometheus.Counter
	readOnly  readOnlyQueries // List and Count without scratch keys, after Redis refused them
	closed    atomic.Bool
}

var _ storage.Store = (*Store)(nil)

// New connects to Redis as cfg says, checks the connection with a PING,
// warns when the server's maxmemory-policy can evict the store's keys, and
// registers the incidentd_redis_* metrics on reg (when not nil).
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Store, error) {
	return NewContext(context.Background(), cfg, log, reg)
}

// NewContext is New, given up as soon as ctx ends (a stop asked for while
// the worker starts): the error then wraps ctx's. The connection check
// gives up after three dial timeouts on its own; when it does, the error
// names the last dial failure (a refused connection, a TLS handshake with
// a server that does not speak TLS), which go-redis keeps to itself.
func NewContext(parent context.Context, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.AppliedRetention <= 0 {
		cfg.AppliedRetention = DefaultAppliedRetention
	}
	dials := &dialLog{}
	rdb, t, err := newClient(cfg, dials)
	if err != nil {
		return nil, err
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = time.Second
	}
	s := &Store{rdb: rdb, prefix: cfg.KeyPrefix, retention: cfg.AppliedRetention, log: log.Named("redis"),
		waitN: cfg.WaitReplicas, waitFor: cfg.WaitTimeout, budget: queryBudget}
	mode := "standalone"
	switch {
	case cfg.Cluster:
		mode, s.prefix = "cluster", "{"+cfg.KeyPrefix+"}"
	case t.Sentinel:
		mode = "sentinel"
	}
	ctx, cancel := context.WithTimeout(parent, connectTimeout(cfg))
	defer cancel()
	if err := ping(ctx, parent, rdb); err != nil {
		if perr := parent.Err(); perr != nil {
			// Close waits for the Sentinel client's lookup of the
			// master, which the PING left running: not the caller.
			go func() { _ = rdb.Close() }()
			return nil, fmt.Errorf("redis connect (%s %v): given up: %w", mode, t.Addrs, perr)
		}
		_ = rdb.Close()
		if t.Username != "" {
			if err := aclTooOld(ctx, cfg, t, err); err != nil {
				return nil, err
			}
		}
		if last := dials.lastErr(); last != nil && !strings.Contains(err.Error(), last.Error()) {
			return nil, fmt.Errorf("redis connect (%s %v): %w (last dial error: %w)", mode, t.Addrs, err, last)
		}
		return nil, fmt.Errorf("redis connect (%s %v): %w", mode, t.Addrs, err)
	}
	v, err := s.version(ctx, cfg, t.Username)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if err := s.upgrade(ctx); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	unsafe, policy := s.checkEviction(ctx)
	m, err := newMetrics(rdb, reg)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if unsafe {
		m.unsafe.Set(1)
	}
	s.conflicts = m.conflicts
	s.readOnly.refusals, s.readOnly.log = m.refusals, s.log
	s.log.Info("redis store opened", zap.String("mode", mode), zap.Strings("addrs", t.Addrs),
		zap.String("master", t.MasterName), zap.Int("db", t.DB), zap.Bool("tls", t.TLS),
		zap.String("key_prefix", s.prefix), zap.Duration("applied_retention", s.retention), zap.Int("wait_replicas", s.waitN),
		zap.String("redis_version", v), zap.Stringer("commands", s.feat), zap.String("maxmemory_policy", policy))
	return s, nil
}

// ping PINGs through rdb within ctx, and returns parent's error as soon as
// parent ends: go-redis's Sentinel client goes on asking the next sentinel
// and retrying its dials for a while after its context ended. The PING
// left behind ends with ctx.
func ping(ctx, parent context.Context, rdb goredis.UniversalClient) error {
	done := make(chan error, 1)
	go func() { done <- rdb.Ping(ctx).Err() }()
	select {
	case err := <-done:
		return err
	case <-parent.Done():
		return parent.Err()
	}
}

// version reads the server's version (serverVersion), refuses one older
// than minVersion, or older than aclVersion with an ACL user, and picks
// the command variants for it (s.feat). When the server refuses INFO (a
// user without the permission, a renamed command) it picks the variants
// every version has. It returns the version for the log.
func (s *Store) version(ctx context.Context, cfg Config, user string) (string, error) {
	v, err := serverVersion(ctx, s.rdb, s.activeKey())
	if cfg.asIfVersion != "" && err == nil {
		v, err = parseVersion(cfg.asIfVersion)
	}
	var re goredis.Error
	switch {
	case err == nil:
	case errors.As(err, &re):
		s.log.Warn("redis: cannot read the server version (INFO server); using the commands of Redis 5.0", zap.Error(err))
		s.feat = features{}
		return "unknown", nil
	default:
		return "", fmt.Errorf("redis: reading the server version (INFO server): %w", err)
	}
	if !v.atLeast(minVersion) {
		return "", fmt.Errorf("redis: the server is Redis %s; incidentd needs Redis %d.%d or later", v, minVersion.major, minVersion.minor)
	}
	if user != "" && !v.atLeast(aclVersion) {
		return "", aclError(user, "the server is Redis "+v.String())
	}
	s.feat = featuresOf(v)
	return v.String(), nil
}

// layoutVersion is the key layout this build writes, kept in
// prefix:schema: 2 added prefix:state:Active (no marker: the layout of
// before, 1).
const layoutVersion = 2

// upgrade brings a keyspace written by an earlier build to layoutVersion,
// once (upgradeScript): it builds prefix:state:Active from the per-state
// sets of the active states. On a keyspace holding no incident (a new
// deployment) it only writes the layout marker, logged at debug. Any
// number of stores may open at once.
func (s *Store) upgrade(ctx context.Context) error {
	args := []any{s.key("schema"), layoutVersion, s.activeKey(), s.key("incidents")}
	for _, st := range incident.States {
		if st.Active() {
			args = append(args, s.key("state", st.String()))
		}
	}
	n, err := upgradeScript.Run(ctx, s.rdb, s.route(), args...).Int64()
	if err != nil && readOnly(err) {
		// A read-only replica, or a user allowed only to read (incidentctl
		// get/list/verify): it cannot write the upgrade, and need not.
		s.log.Warn("redis: the key layout upgrade needs write access; skipped (a worker with write access does it when it opens)",
			zap.Int("layout_version", layoutVersion), zap.Error(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("redis upgrade of the key layout to version %d: %w", layoutVersion, err)
	}
	switch {
	case n >= 0:
		s.log.Info("redis key layout upgraded: active set built from the state sets", zap.String("key", s.activeKey()),
			zap.Int64("active_incidents", n), zap.Int("layout_version", layoutVersion))
	case n == -2:
		s.log.Debug("redis key layout marker written on an empty keyspace", zap.String("key", s.key("schema")),
			zap.Int("layout_version", layoutVersion))
	}
	return nil
}

func connectTimeout(cfg Config) time.Duration {
	d := cfg.DialTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	return 3 * d
}

// key builds "prefix:part:part...".
func (s *Store) key(parts ...string) string {
	k := s.prefix
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

// activeKey is the set of the active incidents' ids (state Detected,
// Triaged, Investigating or Remediating): prefix:state:Active, the
// reference guide's key, kept beside the per-state sets.
func (s *Store) activeKey() string { return s.key("state", "Active") }

// activeFlag is an update's membership of the active set as applyScript
// takes it: "1" in it, "0" out of it. Which states are active is
// incident.State.Active's to say, never the script's.
func activeFlag(st incident.State) string {
	if st.Active() {
		return "1"
	}
	return "0"
}

// route is KEYS[1] of every script: the all-incidents set.
func (s *Store) route() []string { return []string{s.key("incidents")} }

// check returns storage.ErrClosed after Close and the context's error.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	return ctx.Err()
}

// wrap maps go-redis's closed-client error and adds context.
func (s *Store) wrap(op string, err error) error {
	if errors.Is(err, goredis.ErrClosed) || s.closed.Load() {
		return storage.ErrClosed
	}
	return fmt.Errorf("redis %s: %w", op, err)
}

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
// an event id was already applied. A go-redis retry of a script the server
// already ran lands here as a conflict: Ingest re-reads, finds every event
// applied and writes nothing.
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
	res, acks, err := s.runApply(ctx, args.args)
	if err != nil {
		return s.wrap("apply", err)
	}
	if len(res) == 1 && res[0] == "ok" && acks < s.waitN {
		return fmt.Errorf("redis apply: written on the master but acknowledged by %d of %d replicas within %v", acks, s.waitN, s.waitFor)
	}
	switch {
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

// master is where the deployment's keys live: the client itself, or in
// Cluster mode the master of the slot's keys, so that a pipeline and its
// WAIT share one connection.
func (s *Store) master(ctx context.Context) (goredis.Cmdable, error) {
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		return cc.MasterForKey(ctx, s.route()[0])
	}
	return s.rdb, nil
}

// barrier waits until everything written so far, by any client, reached
// WaitReplicas replicas: a tiny write moves this connection's replication
// offset to the current one, and WAIT follows it. Lookup calls it when a
// batch's events are already applied, so a batch whose earlier Apply was
// written but not acknowledged by replicas is not reported as done (and
// acked) before its markers are replicated.
func (s *Store) barrier(ctx context.Context) error {
	c, err := s.master(ctx)
	if err != nil {
		return err
	}
	pipe := c.Pipeline()
	pipe.Set(ctx, s.key("barrier"), 1, 0)
	w := pipe.Do(ctx, "WAIT", s.waitN, s.waitFor.Milliseconds())
	_, _ = pipe.Exec(ctx)
	acks, err := w.Int64()
	if err != nil {
		return err
	}
	if int(acks) < s.waitN {
		return fmt.Errorf("applied events acknowledged by %d of %d replicas within %v", acks, s.waitN, s.waitFor)
	}
	return nil
}

// Get returns one incident by id, or storage.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*incident.Incident, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	raw, err := s.rdb.Get(ctx, s.key("incident", id)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("get", err)
	}
	return decode(raw)
}

// FindOpen returns the active incident of an identity, or
// storage.ErrNotFound.
func (s *Store) FindOpen(ctx context.Context, fingerprint string) (*incident.Incident, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	raw, err := findOpenScript.Run(ctx, s.rdb, s.route(), s.prefix, fingerprint).Text()
	if errors.Is(err, goredis.Nil) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("find open", err)
	}
	in, err := decode(raw)
	if err != nil {
		return nil, err
	}
	if !in.Active() {
		return nil, storage.ErrNotFound
	}
	return in, nil
}

// Delete removes an incident, its index memberships and, when it was the
// latest of its identity, the identity pointer; or returns
// storage.ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	n, err := deleteScript.Run(ctx, s.rdb, s.route(), s.prefix, id, s.activeKey()).Int64()
	if err != nil {
		return s.wrap("delete", err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// Flush returns once the server answers: every Apply was already written to
// the server, and its durability is the server's appendfsync setting
// (WAITAOF, which waits for the fsync, is Redis 7.2's; not used).
func (s *Store) Flush(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.wrap("flush", err)
	}
	return nil
}

// Ping asks the server holding the store's keys (in Cluster mode the master
// of the deployment's slot, with Sentinel the current master) whether it
// answers, with one PING: the worker's readiness probe, which sees a Redis
// gone away while no batch is being written.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c, err := s.master(ctx)
	if err != nil {
		return s.wrap("ping", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// Stats reports the incident count (SCARD of the all-incidents set);
// SizeOnDisk is 0, the server's files are not the client's to measure.
func (s *Store) Stats(ctx context.Context) (storage.Stats, error) {
	if err := s.check(ctx); err != nil {
		return storage.Stats{}, err
	}
	n, err := s.rdb.SCard(ctx, s.key("incidents")).Result()
	if err != nil {
		return storage.Stats{}, s.wrap("stats", err)
	}
	return storage.Stats{Incidents: n}, nil
}

// Close closes the connection pool; later calls return storage.ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return storage.ErrClosed
	}
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redis close: %w", err)
	}
	return nil
}
