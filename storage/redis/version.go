package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// version is a Redis server version as INFO server's redis_version says
// it: major.minor.patch.
type version struct{ major, minor, patch int }

// The versions the store cares about.
var (
	// minVersion is the oldest server the store runs on: scripts are
	// replicated by their effects by default from 5.0 on (the apply
	// script writes after TIME), and go-redis's Sentinel client asks for
	// SENTINEL REPLICAS, also new in 5.0.
	minVersion = version{5, 0, 0}
	// aclVersion brought ACL users (AUTH user password, HELLO).
	aclVersion = version{6, 0, 0}
)

// parseVersion reads "7.0.15", "6.2", "5.0.14-rc1" (a suffix after the
// numbers is ignored).
func parseVersion(s string) (version, error) {
	var n [3]int
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return version{}, fmt.Errorf("redis version %q: not major.minor[.patch]", s)
	}
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		if end == 0 || (end < len(p) && i < len(parts)-1) {
			return version{}, fmt.Errorf("redis version %q: not major.minor[.patch]", s)
		}
		v, err := strconv.Atoi(p[:end])
		if err != nil {
			return version{}, fmt.Errorf("redis version %q: %w", s, err)
		}
		n[i] = v
	}
	return version{n[0], n[1], n[2]}, nil
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// atLeast reports whether v is o or newer.
func (v version) atLeast(o version) bool {
	if v.major != o.major {
		return v.major > o.major
	}
	if v.minor != o.minor {
		return v.minor > o.minor
	}
	return v.patch >= o.patch
}

// features are the commands newer than minVersion that the scripts use
// when the server has them. Everything else they send is in 5.0 (see the
// README's Redis section for the list).
type features struct {
	// zmscore: ZMSCORE (6.2) reads the markers of a batch in one call;
	// without it, one ZSCORE per event id.
	zmscore bool
	// sintercard: SINTERCARD (7.0) counts an intersection without
	// building it; without it, SINTERSTORE into a temporary key (the
	// prefix's hash tag keeps it in the slot), then DEL.
	sintercard bool
}

func featuresOf(v version) features {
	return features{
		zmscore:    v.atLeast(version{6, 2, 0}),
		sintercard: v.atLeast(version{7, 0, 0}),
	}
}

// String names the variants in use, for the log.
func (f features) String() string {
	var out []string
	if f.zmscore {
		out = append(out, "ZMSCORE")
	} else {
		out = append(out, "ZSCORE per event")
	}
	if f.sintercard {
		out = append(out, "SINTERCARD")
	} else {
		out = append(out, "SINTERSTORE+DEL")
	}
	return strings.Join(out, ", ")
}

// flag is a feature as the scripts take it in ARGV.
func flag(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

// infoVersion finds redis_version in the text of INFO server.
func infoVersion(info string) (version, error) {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			return parseVersion(v)
		}
	}
	return version{}, errors.New("INFO server has no redis_version")
}

// serverVersion is the version of the server the store writes to: the
// server's, or the Sentinel master's. In Cluster mode it is the lowest of
// the masters' (the deployment's slot may move to any of them), of those
// that answer: the master that owns slotKey's slot (the hash tag every key
// of the deployment shares; "" for none) must answer, the others may be
// unreachable (a failover in progress) without stopping the store.
func serverVersion(ctx context.Context, rdb goredis.UniversalClient, slotKey string) (version, error) {
	one := func(ctx context.Context, c goredis.Cmdable) (version, error) {
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return version{}, err
		}
		return infoVersion(info)
	}
	cc, ok := rdb.(*goredis.ClusterClient)
	if !ok {
		return one(ctx, rdb)
	}
	var mu sync.Mutex
	var low version
	found := false
	take := func(v version) {
		mu.Lock()
		defer mu.Unlock()
		if !found || !v.atLeast(low) {
			low, found = v, true
		}
	}
	if slotKey != "" {
		owner, err := cc.MasterForKey(ctx, slotKey)
		if err != nil {
			return version{}, fmt.Errorf("the master of %s: %w", slotKey, err)
		}
		v, err := one(ctx, owner)
		if err != nil {
			return version{}, fmt.Errorf("master %s: %w", owner.Options().Addr, err)
		}
		take(v)
	}
	var firstErr error
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		v, err := one(ctx, c)
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("master %s: %w", c.Options().Addr, err)
			}
			mu.Unlock()
			return nil // best effort: the owner of the slot answered above
		}
		take(v)
		return nil
	})
	if !found {
		if firstErr != nil {
			return version{}, firstErr
		}
		return version{}, errors.New("no cluster master answered")
	}
	return low, nil
}

// aclError says that an ACL user needs a newer server.
func aclError(user, found string) error {
	return fmt.Errorf("redis: an ACL user (%q) needs Redis %d.%d or later, but %s; "+
		"on this server give the password only (redis://:password@host, or [state.redis] password with no username)",
		user, aclVersion.major, aclVersion.minor, found)
}

// aclTooOld explains a failed first PING with a user name (connErr) when
// the server is older than aclVersion: such a server has no HELLO, and
// refuses the AUTH user password go-redis falls back to ("wrong number of
// arguments"). It reads the version through a client that sends the
// password alone; when that fails too, the AUTH error is the evidence.
// Returns nil when the server is not too old for ACL users.
func aclTooOld(ctx context.Context, c Config, t redisurl.URL, connErr error) error {
	probe := t
	probe.Username = ""
	if rdb, err := c.clientFor(probe, nil); err == nil {
		v, err := serverVersion(ctx, rdb, "")
		_ = rdb.Close()
		if err == nil && !v.atLeast(aclVersion) {
			return aclError(t.Username, "the server is Redis "+v.String())
		}
		if err == nil {
			return nil
		}
	}
	if strings.Contains(strings.ToLower(connErr.Error()), "wrong number of arguments for 'auth'") {
		return aclError(t.Username, fmt.Sprintf("the server refused AUTH with a user name (%v), as servers before %d.%d do", connErr, aclVersion.major, aclVersion.minor))
	}
	return nil
}
