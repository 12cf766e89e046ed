package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage"
)

// leaseTTL is how long a write lease lasts unless released or extended: a
// holder that died (kill -9 in the middle of a batch) blocks the other
// writers no longer than this.
const leaseTTL = 5 * time.Second

var _ storage.WriteLeaser = (*Store)(nil)

// newToken names one Store as a lease holder.
func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// leaseScript: ARGV = prefix, token, ttl (ms). Takes prefix:lease when it is
// free or already this token's (extending it); returns 1 when held, else 0.
var leaseScript = goredis.NewScript(`
local k = ARGV[1] .. ':lease'
local h = redis.call('GET', k)
if h and h ~= ARGV[2] then return 0 end
redis.call('SET', k, ARGV[2], 'PX', ARGV[3])
return 1
`)

// releaseScript: ARGV = prefix, token. Deletes prefix:lease when this token
// holds it.
var releaseScript = goredis.NewScript(`
local k = ARGV[1] .. ':lease'
if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end
return 1
`)

// LeaseWrites waits until this store holds the deployment's write lease
// (prefix:lease, a string with a TTL of leaseTTL), extending it when it
// already does. While it is held, the Apply of every other store (pod)
// fails with storage.ErrLeased. See storage.WriteLeaser.
func (s *Store) LeaseWrites(ctx context.Context) error {
	wait := time.Millisecond
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		ok, err := leaseScript.Run(ctx, s.rdb, s.route(), s.prefix, s.token, leaseTTL.Milliseconds()).Int()
		if err != nil {
			return s.wrap("lease", err)
		}
		if ok == 1 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// ReleaseWrites gives up the write lease if this store holds it.
func (s *Store) ReleaseWrites(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := releaseScript.Run(ctx, s.rdb, s.route(), s.prefix, s.token).Err(); err != nil {
		return s.wrap("release lease", err)
	}
	return nil
}
