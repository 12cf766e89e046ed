package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/incident"
)

// checkPipeline is how many fingerprint sets CheckIndexes reads per round
// trip (one SSCAN each).
const checkPipeline = 256

// CheckIndexes checks the two index sets of the key layout that no
// storage.Store method reads in full against records, every incident as a
// walk of the store read them: prefix:incidents must hold exactly their
// ids, and each prefix:fingerprint:{fp} exactly the ids of the incidents
// of that fingerprint, with no such set left for a fingerprint none of
// them has. It calls fail once per disagreement (a missing id, a stale
// one, a stale set, a key that is not a set) and returns what it checked,
// for the report. It reads with SSCAN, and SCAN MATCH for the fingerprint
// sets (on the master of the deployment's slot in Cluster mode), never
// KEYS: besides the id and fingerprint of each record it holds one
// pipeline of sets at a time. It returns an error only when it could not
// read; concurrent writes show up as disagreements.
func (s *Store) CheckIndexes(ctx context.Context, records []*incident.Incident, fail func(problem string)) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", err
	}
	byFP := make(map[string][]string)
	fpOf := make(map[string]string, len(records))
	for _, in := range records {
		byFP[in.Fingerprint] = append(byFP[in.Fingerprint], in.ID)
		fpOf[in.ID] = in.Fingerprint
	}
	if err := s.checkAllSet(ctx, fpOf, fail); err != nil {
		return "", err
	}
	fps := make([]string, 0, len(byFP))
	for fp := range byFP {
		fps = append(fps, fp)
	}
	slices.Sort(fps)
	for start := 0; start < len(fps); start += checkPipeline {
		if err := s.checkFingerprintSets(ctx, fps[start:min(start+checkPipeline, len(fps))], byFP, fpOf, fail); err != nil {
			return "", err
		}
	}
	n, err := s.checkStaleFingerprintSets(ctx, byFP, fail)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("redis sets: %s and %d %s sets checked against the records",
		s.key("incidents"), n, s.key("fingerprint", "*")), nil
}

// checkAllSet walks prefix:incidents with SSCAN: every member must be a
// record's id, every record's id a member.
func (s *Store) checkAllSet(ctx context.Context, fpOf map[string]string, fail func(string)) error {
	key := s.key("incidents")
	found := make(map[string]bool, len(fpOf))
	err := s.sscan(ctx, s.rdb, key, func(id string) {
		if _, ok := fpOf[id]; !ok {
			if !found[id] {
				fail(fmt.Sprintf("set %s: holds %q, which no listed incident has", key, id))
			}
		}
		found[id] = true
	})
	if bad := serverError(err); bad != "" {
		fail(fmt.Sprintf("set %s: cannot be read as a set: %s", key, bad))
		return nil
	}
	if err != nil {
		return s.wrap("sscan", err)
	}
	missing := make([]string, 0)
	for id := range fpOf {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for _, id := range missing {
		fail(fmt.Sprintf("set %s: misses %s", key, id))
	}
	return nil
}

// checkFingerprintSets reads the sets of fps in one pipeline (one SSCAN
// each; the rare set that needs more steps goes on alone) and compares each
// with the ids of its incidents.
func (s *Store) checkFingerprintSets(ctx context.Context, fps []string, byFP map[string][]string, fpOf map[string]string, fail func(string)) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.ScanCmd, len(fps))
	for i, fp := range fps {
		cmds[i] = pipe.SScan(ctx, s.key("fingerprint", fp), 0, "", scanCount)
	}
	if _, err := pipe.Exec(ctx); err != nil && serverError(err) == "" {
		return s.wrap("sscan", err)
	}
	for i, fp := range fps {
		key := s.key("fingerprint", fp)
		members, cursor, err := cmds[i].Result()
		if err == nil && cursor != 0 {
			err = s.sscanFrom(ctx, s.rdb, key, cursor, func(id string) { members = append(members, id) })
		}
		if bad := serverError(err); bad != "" {
			fail(fmt.Sprintf("set %s: cannot be read as a set: %s", key, bad))
			continue
		}
		if err != nil {
			return s.wrap("sscan", err)
		}
		got := make(map[string]bool, len(members))
		for _, id := range members {
			if got[id] {
				continue // SSCAN may return a member twice
			}
			got[id] = true
			switch other, ok := fpOf[id]; {
			case !ok:
				fail(fmt.Sprintf("set %s: holds %q, which no listed incident has", key, id))
			case other != fp:
				fail(fmt.Sprintf("set %s: holds %s, whose fingerprint is %s", key, id, other))
			}
		}
		for _, id := range byFP[fp] {
			if !got[id] {
				fail(fmt.Sprintf("set %s: misses %s", key, id))
			}
		}
	}
	return nil
}

// checkStaleFingerprintSets looks for prefix:fingerprint:* keys of a
// fingerprint no record has (SCAN MATCH on the deployment's master),
// reports each as a stale set or, by its TYPE, as a key that is not a set,
// and returns how many fingerprint keys it saw.
func (s *Store) checkStaleFingerprintSets(ctx context.Context, byFP map[string][]string, fail func(string)) (int, error) {
	c, err := s.master(ctx)
	if err != nil {
		return 0, s.wrap("scan", err)
	}
	head := s.key("fingerprint", "")
	pattern := globEscape(head) + "*"
	seen := make(map[string]bool)
	var cursor uint64
	for {
		if err := s.check(ctx); err != nil {
			return 0, err
		}
		keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return 0, s.wrap("scan", err)
		}
		for _, k := range keys {
			fp, ok := strings.CutPrefix(k, head)
			if !ok || seen[k] {
				continue
			}
			seen[k] = true
			if _, known := byFP[fp]; known {
				continue
			}
			// A stale key is rare: its TYPE costs one round trip.
			typ, err := c.Type(ctx, k).Result()
			switch {
			case err != nil:
				return 0, s.wrap("type", err)
			case typ == "none":
				// deleted since SCAN returned it
			case typ != "set":
				fail(fmt.Sprintf("set %s: no listed incident has fingerprint %s, and the key is not a set (a %s)", k, fp, typ))
			default:
				fail(fmt.Sprintf("set %s: no listed incident has fingerprint %s (a stale set)", k, fp))
			}
		}
		if next == 0 {
			return len(seen), nil
		}
		cursor = next
	}
}

// sscan calls fn for every member of the set at key (a member may come
// twice, as SSCAN promises no better).
func (s *Store) sscan(ctx context.Context, c goredis.Cmdable, key string, fn func(string)) error {
	return s.sscanFrom(ctx, c, key, 0, fn)
}

func (s *Store) sscanFrom(ctx context.Context, c goredis.Cmdable, key string, cursor uint64, fn func(string)) error {
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		members, next, err := c.SScan(ctx, key, cursor, "", scanCount).Result()
		if err != nil {
			return err
		}
		for _, m := range members {
			fn(m)
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// serverError is the text of a Redis error reply (WRONGTYPE for a key that
// is not a set), "" for no error or one of another kind (a network
// failure).
func serverError(err error) string {
	var re goredis.Error
	if err == nil || !errors.As(err, &re) {
		return ""
	}
	return re.Error()
}

// globEscape escapes the characters SCAN MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
