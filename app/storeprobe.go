package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
)

// Pinger is a store that can be asked whether it still answers: the Redis
// store (a PING). The worker probes it for /readyz so that a store gone
// away is noticed while no batch is being written. A store without it
// (Pebble, memory: in the process, reachable once open) is not probed.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ErrStoreUnreachable is the readiness failure while the store does not
// answer its probe.
var ErrStoreUnreachable = errors.New("app: store not answering")

// ErrStoreReadOnly is the readiness failure while the store answers its
// probe but cannot take writes (storage.ErrReadOnly: a standalone Redis
// demoted to a replica).
var ErrStoreReadOnly = errors.New("app: store read-only")

// StoreProbeTimeout bounds one probe of the store: a PING that takes longer
// counts as no answer.
const StoreProbeTimeout = 2 * time.Second

// storeProbe pings the store every interval and keeps the verdict for the
// "store" readiness check. It logs and counts transitions only: one
// warning (and incidentd_store_unreachable_total + 1) when the store stops
// answering, one warning (not counted) when it answers as read-only
// (storage.ErrReadOnly), one info line when it is ready again.
type storeProbe struct {
	p       Pinger
	log     *zap.Logger
	counter prometheus.Counter
	timeout time.Duration

	mu    sync.Mutex
	err   error // the last probe's failure; nil while the store answers
	since time.Time
}

func newStoreProbe(p Pinger, log *zap.Logger, m *metrics.Metrics) *storeProbe {
	return &storeProbe{p: p, log: log, counter: m.StoreUnreachable, timeout: StoreProbeTimeout}
}

// check is the readiness check: nil while the store answers.
func (sp *storeProbe) check() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	switch {
	case sp.err == nil:
		return nil
	case errors.Is(sp.err, storage.ErrReadOnly):
		return fmt.Errorf("%w: %v", ErrStoreReadOnly, sp.err)
	}
	return fmt.Errorf("%w: %v", ErrStoreUnreachable, sp.err)
}

// run probes every interval until ctx ends. Probes never overlap: a slow
// one delays the next.
func (sp *storeProbe) run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = config.Default().Consumer.LagPollInterval.Duration
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sp.probe(ctx)
		}
	}
}

// probe pings once and records the verdict; a probe cut short by ctx (the
// worker stopping) records none.
func (sp *storeProbe) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, sp.timeout)
	start := time.Now()
	err := sp.p.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err == nil && time.Since(start) > sp.timeout {
		err = fmt.Errorf("no answer within %s", sp.timeout)
	}
	sp.set(err)
}

func (sp *storeProbe) set(err error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	was := sp.err
	sp.err = err
	readOnly, wasReadOnly := errors.Is(err, storage.ErrReadOnly), errors.Is(was, storage.ErrReadOnly)
	switch {
	case err != nil && was == nil:
		sp.since = time.Now()
		fallthrough
	case err != nil && readOnly != wasReadOnly:
		if readOnly {
			sp.log.Warn("store read-only: not ready until it takes writes", zap.Error(err))
			return
		}
		sp.counter.Inc()
		sp.log.Warn("store not answering: not ready until it does", zap.Error(err))
	case err == nil && wasReadOnly:
		sp.log.Info("store writable again: ready", zap.Duration("not_ready_for", time.Since(sp.since)))
	case err == nil && was != nil:
		sp.log.Info("store answering again: ready", zap.Duration("unreachable_for", time.Since(sp.since)))
	}
}
