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
	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// Store is a storage.Store on Redis. All methods are safe for concurrent
// use, and any number of Stores (in any number of processes) may share one
// keyspace.
type Store struct {
	rdb       goredis.UniversalClient
	prefix    string // key prefix, "{prefix}" in Cluster mode
	guarded   bool   // Cluster mode: scripts declare the slot guard (route)
	retention time.Duration
	waitN     int
	waitFor   time.Duration
	budget    int // queryBudget; tests lower it to reach the fallback
	feat      features
	log       *zap.Logger
	conflicts prometheus.Counter
	readOnly  readOnlyQueries // List and Count without scratch keys, after Redis refused them
	role      roleProbe       // standalone: Ping asks ROLE too
	closed    atomic.Bool
	token     string // this store as a write-lease holder (lease.go)
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
// waits for a server that cannot be reached yet (waitPing) for up to three
// dial timeouts; when that runs out, the error names the last dial failure
// (a refused connection, a TLS handshake with a server that does not speak
// TLS), which go-redis keeps to itself. The checks after the PING (a
// standalone URL naming a Redis Cluster node is refused, version, layout
// upgrade, eviction policy) get three dial timeouts of their own.
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
		waitN: cfg.WaitReplicas, waitFor: cfg.WaitTimeout, budget: queryBudget, token: newToken()}
	mode := "standalone"
	switch {
	case cfg.Cluster:
		mode, s.prefix, s.guarded = "cluster", "{"+cfg.KeyPrefix+"}", true
	case t.Sentinel:
		mode = "sentinel"
	}
	if err := waitPing(parent, connectTimeout(cfg), rdb); err != nil {
		return nil, connectError(parent, cfg, t, mode, err, dials, rdb)
	}
	ctx, cancel := context.WithTimeout(parent, connectTimeout(cfg))
	defer cancel()
	if mode == "standalone" {
		s.role.on, s.role.addr = true, t.Addrs[0]
		if err := refuseClusterNode(ctx, rdb, t.Addrs[0]); err != nil {
			_ = rdb.Close()
			return nil, err
		}
	}
	v, err := s.version(ctx, cfg, t.Username)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	// A keyspace of the old system is refused before anything is written.
	if err := s.refuseLegacy(ctx, cfg); err != nil {
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

// connectError closes rdb, whose PING failed with err, and says why,
// naming the connection (mode and addresses) and, when err does not, the
// last dial failure: parent's error when the start-up was stopped, sentinels
// that know no master of the URL's name (noSentinelMaster), a user name
// refused by a server older than Redis 6.0 (aclTooOld).
func connectError(parent context.Context, cfg Config, t redisurl.URL, mode string, err error, dials *dialLog, rdb goredis.UniversalClient) error {
	if perr := parent.Err(); perr != nil {
		// Close waits for the Sentinel client's lookup of the master,
		// which the PING left running: not the caller.
		go func() { _ = rdb.Close() }()
		return fmt.Errorf("redis connect (%s %v): given up: %w", mode, t.Addrs, perr)
	}
	_ = rdb.Close()
	ctx, cancel := context.WithTimeout(parent, connectTimeout(cfg))
	defer cancel()
	if err := noSentinelMaster(ctx, cfg, t); err != nil {
		return err
	}
	if t.Username != "" {
		if err := aclTooOld(ctx, cfg, t, err); err != nil {
			return err
		}
	}
	if last := dials.lastErr(); last != nil && !strings.Contains(err.Error(), last.Error()) {
		return fmt.Errorf("redis connect (%s %v): %w (last dial error: %w)", mode, t.Addrs, err, last)
	}
	return fmt.Errorf("redis connect (%s %v): %w", mode, t.Addrs, err)
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

// route is the KEYS of every script: the all-incidents set, which routes
// it, and in Cluster mode the slot guard, a key of the deployment's slot
// that never exists. While the slot moves between masters (MIGRATING on
// one, IMPORTING on the other), Redis refuses a command whose declared keys
// are not all on the node with TRYAGAIN, on either side: without the guard
// a script sent to the new master by ASK once the all-incidents set had
// moved ran there against the keys still on the old one as if they were
// absent (a second open incident, markers lost). Outside a move, missing
// declared keys change nothing.
func (s *Store) route() []string {
	if s.guarded {
		return []string{s.key("incidents"), s.key("slot-guard")}
	}
	return []string{s.key("incidents")}
}

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
	n, err := deleteScript.Run(ctx, s.rdb, s.route(), s.prefix, s.activeKey(), id, "").Int64()
	if err != nil {
		return s.wrap("delete", err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// deleteChunk is how many incidents one script of DeleteVersions removes,
// so that a long prune does not hold Redis for long at a time.
const deleteChunk = 100

// DeleteVersions deletes each incident of want whose stored version is the
// one given (storage.Store), a script per deleteChunk incidents
// (each chunk atomic), and returns how many it deleted.
func (s *Store) DeleteVersions(ctx context.Context, want map[string]int64) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	total := 0
	for start := 0; start < len(ids); start += deleteChunk {
		args := []any{s.prefix, s.activeKey()}
		for _, id := range ids[start:min(start+deleteChunk, len(ids))] {
			args = append(args, id, strconv.FormatInt(want[id], 10))
		}
		n, err := deleteScript.Run(ctx, s.rdb, s.route(), args...).Int64()
		if err != nil {
			return total, s.wrap("delete", err)
		}
		total += int(n)
	}
	return total, nil
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
// gone away while no batch is being written. A standalone store (redis://)
// asks ROLE in the same round trip, and a server that is a replica (demoted
// by a failover) fails the probe with an error wrapping
// storage.ErrReadOnly. Only the worker probes; incidentctl's read-only
// queries may read a replica.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c, err := s.master(ctx)
	if err != nil {
		return s.wrap("ping", err)
	}
	if _, ok := s.rdb.(*goredis.ClusterClient); ok {
		// A keyed command, not a PING: a cluster whose state is fail (a
		// slot range without a master) refuses every keyed command with
		// CLUSTERDOWN, the deployment's slot included, while its nodes
		// still answer PING (found by a black-box run: idle pods stayed
		// ready).
		if err := c.Exists(ctx, s.key("schema")).Err(); err != nil {
			return s.wrap("ping", err)
		}
		return nil
	}
	if err := s.role.ping(ctx, c); err != nil {
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
