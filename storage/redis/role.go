package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage"
)

// roleProbe makes the PING of a standalone store's Ping (a redis:// URL:
// no Sentinel to lead it to the master, no Cluster slot map) ask the
// server's ROLE too, in the same round trip, so that a worker whose server
// was demoted to a replica (a Sentinel failover behind a fixed address)
// turns not-ready before a batch fails with READONLY. Sentinel and Cluster
// stores find their master themselves; their probe is the PING alone.
type roleProbe struct {
	// on: the store is standalone.
	on bool
	// refused: the server refused ROLE (an ACL user without the
	// permission, a renamed command); not asked again.
	refused atomic.Bool
	// addr is the server's address, for the error.
	addr string
}

// ping PINGs through c and, when the probe is on, asks ROLE with it. It
// returns the PING's failure, or an error wrapping storage.ErrReadOnly when
// the server says it is a replica. A refused ROLE is no failure.
func (r *roleProbe) ping(ctx context.Context, c goredis.Cmdable) error {
	if !r.on || r.refused.Load() {
		return c.Ping(ctx).Err()
	}
	pipe := c.Pipeline()
	p := pipe.Ping(ctx)
	role := pipe.Do(ctx, "ROLE")
	_, _ = pipe.Exec(ctx)
	if err := p.Err(); err != nil {
		return err
	}
	reply, err := role.Slice()
	if err != nil {
		var re goredis.Error
		if errors.As(err, &re) {
			r.refused.Store(true)
		}
		return nil
	}
	if len(reply) >= 3 && fmt.Sprint(reply[0]) == "slave" {
		return fmt.Errorf("%s is a read-only replica of %v:%v (ROLE; demoted by a failover?); a worker cannot write to it: "+
			"point redis_url at the master, or use a redis+sentinel:// URL, which follows failovers: %w",
			r.addr, reply[1], reply[2], storage.ErrReadOnly)
	}
	return nil
}
