// Package backend is the storage factory: it opens the store named by
// [state] backend (memory, pebble, redis, redis_cluster) for the worker, the
// CLI and the benchmarks. An unknown backend is an error, never a fallback.
package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/pebble"
	"github.com/llm-im/incidentd/storage/redis"
)

// ErrUnknownBackend is returned for a state.backend Open does not know.
var ErrUnknownBackend = errors.New("backend: unknown state.backend")

// Open opens the store cfg.Backend names. "sled" is accepted as the old
// name of pebble (config.Load normally rewrites it already). reg receives
// the backend's own collectors, when it has any.
func Open(cfg config.StateConfig, log *zap.Logger, reg prometheus.Registerer) (storage.Store, error) {
	return OpenContext(context.Background(), cfg, log, reg)
}

// OpenContext is Open, given up when ctx ends while the store is being
// reached (a stop asked for while the worker starts; Redis, which may take
// three dial timeouts to fail; Pebble, whose open waits while a flush it
// replays fails, as on a full disk): the error then wraps ctx's. Memory
// opens whatever ctx says.
func OpenContext(ctx context.Context, cfg config.StateConfig, log *zap.Logger, reg prometheus.Registerer) (storage.Store, error) {
	log = log.Named("store")
	switch cfg.Backend {
	case config.BackendMemory:
		return memory.NewWithConfig(memory.Config{AppliedRetention: cfg.AppliedRetention.Duration}), nil
	case config.BackendPebble, config.BackendSledAlias:
		return openPebble(ctx, cfg, log, reg)
	case config.BackendRedis, config.BackendRedisCluster:
		return openRedis(ctx, cfg, log, reg)
	}
	return nil, fmt.Errorf("%w: %q (want memory, pebble, redis or redis_cluster)", ErrUnknownBackend, cfg.Backend)
}

// openPebble opens the Pebble backend from [state] and [state.pebble]. A
// failed open returns a nil interface, never a typed nil. When ctx ends
// first, it returns at once; a store opened after that is closed.
func openPebble(ctx context.Context, cfg config.StateConfig, log *zap.Logger, reg prometheus.Registerer) (storage.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open pebble store: %w", err)
	}
	type opened struct {
		s   *pebble.Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := pebble.New(pebble.ConfigFrom(cfg), log, reg)
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, o.err
		}
		return o.s, nil
	case <-ctx.Done():
		go func() {
			if o := <-done; o.err == nil {
				_ = o.s.Close()
			}
		}()
		return nil, fmt.Errorf("open pebble store: %w", ctx.Err())
	}
}

// openRedis maps [state] and [state.redis] onto the Redis backend's Config.
func openRedis(ctx context.Context, cfg config.StateConfig, log *zap.Logger, reg prometheus.Registerer) (storage.Store, error) {
	r := cfg.Redis
	s, err := redis.NewContext(ctx, redis.Config{
		URL:                   cfg.RedisURL,
		ClusterNodes:          cfg.RedisClusterNodes,
		Cluster:               cfg.Backend == config.BackendRedisCluster,
		PoolSize:              cfg.PoolSize,
		KeyPrefix:             cfg.KeyPrefix,
		AppliedRetention:      cfg.AppliedRetention.Duration,
		Username:              r.Username,
		Password:              r.Password,
		SentinelUsername:      r.SentinelUsername,
		SentinelPassword:      r.SentinelPassword,
		TLSCAFile:             r.TLSCAFile,
		TLSCertFile:           r.TLSCertFile,
		TLSKeyFile:            r.TLSKeyFile,
		TLSServerName:         r.TLSServerName,
		TLSInsecureSkipVerify: r.TLSInsecureSkipVerify,
		DialTimeout:           r.DialTimeout.Duration,
		ReadTimeout:           r.ReadTimeout.Duration,
		WriteTimeout:          r.WriteTimeout.Duration,
		WaitReplicas:          r.WaitReplicas,
		WaitTimeout:           r.WaitTimeout.Duration,
	}, log, reg)
	if err != nil {
		return nil, err // a nil interface, never a typed nil
	}
	return s, nil
}
