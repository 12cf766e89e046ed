package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// pollLag samples the consumer info into the lag gauges, and the store
// into the size and by-state gauges, every lag_poll_interval; when caught
// up, it also resolves incidents whose quiet period ended (sweep).
func (c *Consumer) pollLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(c.cfg.Consumer.LagPollInterval.Duration)
	defer t.Stop()
	for {
		c.sample(ctx, cons)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Consumer) sample(ctx context.Context, cons jetstream.Consumer) {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if info, err := cons.Info(ictx); err == nil {
		c.m.ConsumerPending.Set(float64(info.NumPending))
		c.m.ConsumerAckPending.Set(float64(info.NumAckPending))
		c.m.ConsumerRedelivered.Set(float64(info.NumRedelivered))
		c.ackLimit(info.NumAckPending, info.Config.MaxAckPending)
		if every := c.cfg.Dedupe.SweepInterval.Duration; every > 0 && time.Since(c.lastSweep) >= every {
			c.lastSweep = time.Now()
			c.sweep(ictx, info.NumPending)
		}
	} else if ictx.Err() == nil {
		c.log.Debug("consumer info", zap.Error(err))
	}
	c.sampleStore(ctx)
}

// ackLimit reports the consumer's max_ack_pending and whether the
// messages delivered and not acked reached it: JetStream then delivers
// nothing more to any worker until acks come back, so the fleet's
// throughput is whatever its commits free, however many pods run. Logged
// and counted once a spell (as the lag poll sees it); with several pods each
// pod that samples it says so.
func (c *Consumer) ackLimit(ackPending, maxAckPending int) {
	c.m.ConsumerMaxAckPending.Set(float64(maxAckPending))
	limited := maxAckPending > 0 && ackPending >= maxAckPending
	switch {
	case limited && !c.ackLimited:
		c.m.ConsumerAckPendingLimit.Inc()
		bs := c.cfg.Consumer.BatchSize
		c.log.Warn("max_ack_pending reached: JetStream delivers to no worker of the consumer until acks come back; "+
			"each worker holds up to 5 x batch_size + 128 messages, so give consumer.max_ack_pending workers x 6 x batch_size or more",
			zap.Int("ack_pending", ackPending), zap.Int("max_ack_pending", maxAckPending),
			zap.Int("per_worker", 6*bs))
	case !limited && c.ackLimited:
		c.log.Info("below max_ack_pending again", zap.Int("ack_pending", ackPending), zap.Int("max_ack_pending", maxAckPending))
	}
	c.ackLimited = limited
}

// sampleStore reads the store's size and its incidents per state into their
// gauges, within a time limit of its own, so that a slow consumer info or
// sweep does not starve it. The states are counted one Count each, every
// one answered from a counter (Pebble), one SCARD (Redis) or the sizes of
// an index set (memory): six cheap calls, not a scan. The six gauges are
// set together, once every Count succeeded; a failing one (the store is
// down) leaves them at the last values read, and the size gauges and the
// lag are sampled all the same.
func (c *Consumer) sampleStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := c.store.Stats(ctx); err == nil {
		c.m.StoreSize.Set(float64(st.SizeOnDisk))
		c.m.StoreIncidents.Set(float64(st.Incidents))
	} else if ctx.Err() == nil {
		c.log.Debug("store stats", zap.Error(err))
	}
	counts := make([]int64, len(incident.States))
	for i, st := range incident.States {
		n, err := c.store.Count(ctx, storage.Filter{States: []incident.State{st}})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Debug("store count by state", zap.Stringer("state", st), zap.Error(err))
			}
			return
		}
		counts[i] = n
	}
	for i, st := range incident.States {
		c.m.StoreIncidentsByState.WithLabelValues(st.String()).Set(float64(counts[i]))
	}
}
