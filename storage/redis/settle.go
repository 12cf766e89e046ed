package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage"
)

// attemptTTL is how long an attempt key (prefix:attempt:<id>) lives: far
// longer than a write whose answer was lost can wait in a stalled server
// or a client's retries before it runs, or is settled.
const attemptTTL = 10 * time.Minute

// lostWrite is the error of an apply call whose answer was lost: it names
// the call's attempt key, for Settle, and wraps storage.ErrOutcomeUnknown.
type lostWrite struct {
	key string
	err error
}

func (l *lostWrite) Error() string {
	return fmt.Sprintf("redis apply: %v (%v)", l.err, storage.ErrOutcomeUnknown)
}

func (l *lostWrite) Unwrap() []error { return []error{l.err, storage.ErrOutcomeUnknown} }

// applyFailed wraps a failed apply call. When the server may have run the
// script (no Redis error reply came back: a timeout, a broken connection,
// a context that ended while waiting), the error is a lostWrite, which
// wraps storage.ErrOutcomeUnknown.
func (s *Store) applyFailed(ak string, err error) error {
	var reply goredis.Error
	if errors.As(err, &reply) || errors.Is(err, goredis.ErrClosed) || s.closed.Load() {
		return s.wrap("apply", err)
	}
	return &lostWrite{key: ak, err: err}
}

// Settle decides the apply call whose answer was lost that lost names
// (storage.Settler: the error Apply returned, wrapped or not): it claims
// the call's attempt key as abandoned unless the script wrote it first. A
// claimed call can no longer write (the script checks its key before
// anything else); one the script wrote reports written. Both are final,
// whenever the lost call reaches the server, if ever. An error that names
// no call of this store settles nothing (false).
func (s *Store) Settle(ctx context.Context, lost error) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	var lw *lostWrite
	if !errors.As(lost, &lw) {
		return false, nil
	}
	written, err := s.settleOne(ctx, lw.key)
	if err != nil {
		return false, s.wrap("settle", err)
	}
	return written, nil
}

// settleOne claims one attempt key, or finds it written; a written one
// must also have reached WaitReplicas replicas, as Apply requires.
func (s *Store) settleOne(ctx context.Context, ak string) (bool, error) {
	claimed, err := s.rdb.SetNX(ctx, ak, "abandoned", attemptTTL).Result()
	if err != nil || claimed {
		return false, err
	}
	v, err := s.rdb.Get(ctx, ak).Result()
	if err != nil || v != "w" {
		return false, err
	}
	if s.waitN > 0 {
		if err := s.barrier(ctx); err != nil {
			return false, err
		}
	}
	return true, nil
}
