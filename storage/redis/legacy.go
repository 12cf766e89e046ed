package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/legacy"
)

// legacySample is how many records of prefix:incidents refuseLegacy reads.
const legacySample = 8

// LegacyKeyspaceError is what New returns for a keyspace holding records
// of the system incidentd replaces (LLM Incident Manager): its key names
// are ours, its records are not. Nothing was written into the keyspace.
// Read reads the old records, for a migration into another prefix or db.
type LegacyKeyspaceError struct {
	// Prefix is the key prefix looked under.
	Prefix string
	// Incidents is the size of Prefix:incidents.
	Incidents int64
	// Sampled and Old are how many records were read, and how many of
	// them were old.
	Sampled, Old int
	// Example is the key of an old record.
	Example string
	// Marker reports whether Prefix:schema, the layout marker of ours,
	// is there: an earlier incidentd or incidentctl opened the keyspace.
	Marker bool
	cfg    Config
}

// Error says what was found and how to migrate.
func (e *LegacyKeyspaceError) Error() string {
	marker := ""
	if e.Marker {
		marker = fmt.Sprintf(" (%s:schema and %s:state:Active were written by an earlier incidentd or incidentctl that opened it; they are ours, not the old system's)", e.Prefix, e.Prefix)
	}
	from, to := "--from-backend redis --from-redis-url <this url>", "--to-redis-url <url of another db> (or --to-key-prefix <another prefix>)"
	if e.cfg.Cluster {
		from, to = "--from-backend redis_cluster --from-redis-cluster-nodes <these nodes>", "--to-redis-cluster-nodes <these nodes> --to-key-prefix <another prefix>"
	}
	return fmt.Sprintf("redis: the keyspace %s holds records of the old system (%s), which this store does not read: "+
		"%d of %d records sampled from %s:incidents (%d ids) are in the old format, e.g. %s%s; nothing was written. "+
		"Migrate them into another key prefix or db, which converts them: incidentctl migrate %s --to-backend %s %s "+
		"[--to-config <the worker's config, for its [dedupe] fields>], then point the workers there (README: Migrating from %s)",
		e.Prefix, legacy.Name, e.Old, e.Sampled, e.Prefix, e.Incidents, e.Example, marker, from, backendName(e.cfg), to, legacy.Name)
}

// backendName is the state.backend of cfg.
func backendName(cfg Config) string {
	if cfg.Cluster {
		return "redis_cluster"
	}
	return "redis"
}

// refuseLegacy returns a *LegacyKeyspaceError when records sampled from
// prefix:incidents are in the old system's format. It only reads.
func (s *Store) refuseLegacy(ctx context.Context, cfg Config) error {
	ids, err := s.rdb.SRandMemberN(ctx, s.key("incidents"), legacySample).Result()
	if err != nil {
		return fmt.Errorf("redis: looking for the old system's records in %s: %w", s.key("incidents"), err)
	}
	if len(ids) == 0 {
		return nil
	}
	recs, err := s.records(ctx, s.rdb, ids)
	if err != nil {
		return fmt.Errorf("redis: looking for the old system's records: %w", err)
	}
	e := &LegacyKeyspaceError{Prefix: s.prefix, cfg: cfg}
	for i, raw := range recs {
		if raw == nil {
			continue
		}
		e.Sampled++
		if legacy.Is(raw) {
			e.Old++
			e.Example = s.key("incident", ids[i])
		}
	}
	if e.Old == 0 {
		return nil
	}
	if e.Incidents, err = s.rdb.SCard(ctx, s.key("incidents")).Result(); err != nil {
		return fmt.Errorf("redis: counting %s: %w", s.key("incidents"), err)
	}
	n, err := s.rdb.Exists(ctx, s.key("schema")).Result()
	if err != nil {
		return fmt.Errorf("redis: reading %s: %w", s.key("schema"), err)
	}
	e.Marker = n > 0
	return e
}

// records GETs the records of ids in one pipeline; a missing one is nil.
func (s *Store) records(ctx context.Context, c goredis.Cmdable, ids []string) ([][]byte, error) {
	cmds := make([]*goredis.StringCmd, len(ids))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.key("incident", id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([][]byte, len(ids))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return nil, err
		default:
			out[i] = b
		}
	}
	return out, nil
}

// legacyPage is how many ids Read asks SSCAN for at a time.
const legacyPage = 500

// Read connects again as the refused store did and calls fn with every
// record listed in Prefix:incidents (id and JSON, old or not: the caller
// tells them apart), in no particular order. It only reads. An id whose
// record is missing is skipped and counted.
func (e *LegacyKeyspaceError) Read(ctx context.Context, fn func(id string, raw []byte) error) (missing int, err error) {
	rdb, _, err := newClient(e.cfg, &dialLog{})
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	s := &Store{rdb: rdb, prefix: e.Prefix}
	var cursor uint64
	seen := map[string]bool{} // SSCAN may return an id twice
	for {
		ids, next, err := rdb.SScan(ctx, s.key("incidents"), cursor, "", legacyPage).Result()
		if err != nil {
			return missing, fmt.Errorf("redis: reading %s: %w", s.key("incidents"), err)
		}
		if missing, err = s.readPage(ctx, ids, seen, missing, fn); err != nil {
			return missing, err
		}
		if cursor = next; cursor == 0 {
			return missing, nil
		}
	}
}

// readPage passes the records of ids not seen yet to fn.
func (s *Store) readPage(ctx context.Context, ids []string, seen map[string]bool, missing int, fn func(string, []byte) error) (int, error) {
	fresh := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			fresh = append(fresh, id)
		}
	}
	recs, err := s.records(ctx, s.rdb, fresh)
	if err != nil {
		return missing, fmt.Errorf("redis: reading records: %w", err)
	}
	for i, raw := range recs {
		if raw == nil {
			missing++
			continue
		}
		if err := fn(fresh[i], raw); err != nil {
			return missing, err
		}
	}
	return missing, nil
}
