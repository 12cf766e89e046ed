package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage"
)

// attemptTTL is how long an attempt key (prefix:attempt:<id>) lives: far
// longer than a write whose answer was lost can wait in a stalled server
// or a client's retries before it runs, or is settled.
const attemptTTL = 10 * time.Minute

// applyFailed wraps a failed apply call. When the server may have run the
// script (no Redis error reply came back: a timeout, a broken connection,
// a context that ended while waiting), the attempt is remembered for
// Settle and the error wraps storage.ErrOutcomeUnknown.
func (s *Store) applyFailed(ak string, err error) error {
	var reply goredis.Error
	if errors.As(err, &reply) || errors.Is(err, goredis.ErrClosed) || s.closed.Load() {
		return s.wrap("apply", err)
	}
	s.unsettledMu.Lock()
	s.unsettled = append(s.unsettled, ak)
	s.unsettledMu.Unlock()
	return fmt.Errorf("redis apply: %w (%w)", err, storage.ErrOutcomeUnknown)
}

// Settle decides the apply calls whose answer was lost (storage.Settler):
// for each, it claims the attempt key as abandoned unless the script wrote
// it first. A claimed attempt can no longer write (the script checks the
// key before anything else); one the script wrote reports written. Both
// are final, whenever the lost call reaches the server, if ever.
func (s *Store) Settle(ctx context.Context) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	s.unsettledMu.Lock()
	keys := append([]string(nil), s.unsettled...)
	s.unsettledMu.Unlock()
	written := false
	for _, ak := range keys {
		w, err := s.settleOne(ctx, ak)
		if err != nil {
			return false, s.wrap("settle", err)
		}
		written = written || w
		s.unsettledMu.Lock()
		s.unsettled = slices.DeleteFunc(s.unsettled, func(k string) bool { return k == ak })
		s.unsettledMu.Unlock()
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
