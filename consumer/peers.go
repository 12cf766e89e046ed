package consumer

import (
	"bytes"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/metrics"
)

// Workers on one consumer say they are alive on a core NATS subject, so
// that a worker can tell when another one died holding messages, or holds
// them while its commits keep failing or take long: only then is reading
// ahead worth its cost (see readAhead).
const (
	peerBeat  = 250 * time.Millisecond // how often a worker says it is alive
	peerLost  = time.Second            // silence after which it counts as dead
	peerBye   = " bye"                 // appended by a worker that stops after draining
	peerStuck = " stuck"               // appended by a worker whose store fails, or whose commit has run for peerLost
)

// peers tracks the other workers of the consumer.
type peers struct {
	id      string
	subject string
	// window is how long after a loss reading ahead stays on: until the
	// dead worker's messages have come back (ack_wait) and been committed.
	window time.Duration

	mu       sync.Mutex
	last     map[string]time.Time // peer id → last heard
	stuck    map[string]bool      // peers whose last beat said stuck
	newStuck int                  // peers found stuck since takeStuck
	lost     time.Time            // when a peer was last found dead, or heard stuck
}

func newPeers(stream, durable string, window time.Duration) *peers {
	return &peers{id: uuid.NewString(), subject: "incidentd.peers." + stream + "." + durable, window: window,
		last: make(map[string]time.Time), stuck: make(map[string]bool)}
}

// suspect reports whether a peer died recently, or is stuck or was until
// recently: messages it held may come back only after ack_wait, or once its
// store takes commits again.
func (p *peers) suspect(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.lost.IsZero() && now.Sub(p.lost) < p.window
}

// heard records a beat (or a goodbye) of a peer.
func (p *peers) heard(data []byte, now time.Time) {
	id, bye := bytes.CutSuffix(data, []byte(peerBye))
	id, stuck := bytes.CutSuffix(id, []byte(peerStuck))
	if string(id) == p.id {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if bye {
		delete(p.last, string(id))
		delete(p.stuck, string(id))
		return
	}
	p.last[string(id)] = now
	switch {
	case stuck:
		if !p.stuck[string(id)] {
			p.stuck[string(id)] = true
			p.newStuck++
		}
		p.lost = now // the window runs from its last stuck beat
	default:
		delete(p.stuck, string(id))
	}
}

// takeStuck returns how many peers were found stuck since the last call.
func (p *peers) takeStuck() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.newStuck
	p.newStuck = 0
	return n
}

// sweep forgets the peers silent for peerLost and returns how many.
func (p *peers) sweep(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for id, t := range p.last {
		if now.Sub(t) >= peerLost {
			delete(p.last, id)
			delete(p.stuck, id)
			p.lost = now
			n++
		}
	}
	return n
}

// runPeers beats and listens until stop is closed, then says goodbye when
// drained reports true (the worker committed and acked what it held).
func (c *Consumer) runPeers(stop <-chan struct{}, drained func() bool) {
	p := c.peers
	sub, err := c.nc.Subscribe(p.subject, func(m *nats.Msg) { p.heard(m.Data, time.Now()) })
	if err != nil {
		c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
		c.log.Warn("cannot hear the other workers; reading ahead stays off", zap.String("subject", p.subject), zap.Error(err))
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	tick := time.NewTicker(peerBeat)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			if drained() {
				_ = c.nc.Publish(p.subject, []byte(p.id+peerBye))
			}
			return
		case now := <-tick.C:
			beat := p.id
			if c.stuck(now) {
				beat += peerStuck
			}
			_ = c.nc.Publish(p.subject, []byte(beat))
			if n := p.sweep(now); n > 0 {
				c.m.PeersLost.Add(float64(n))
				c.log.Info("another worker went silent without stopping; reading ahead for its messages",
					zap.Int("workers", n), zap.Duration("for", p.window))
			}
			if n := p.takeStuck(); n > 0 {
				c.m.PeersStuck.Add(float64(n))
				c.log.Info("another worker cannot commit; reading ahead for the messages it holds",
					zap.Int("workers", n), zap.Duration("after it recovers, for", p.window))
			}
		}
	}
}

// stuck reports whether this worker's store is failing (a commit failed
// and has not succeeded since: the worker holds that batch until a retry
// does), or its commit under way has run for peerLost (a commit takes tens
// of milliseconds). Either way it holds its messages (InProgress), and its
// peers should read ahead for them.
func (c *Consumer) stuck(now time.Time) bool {
	if c.storeErr.Load() != nil {
		return true
	}
	since := c.applyingSince.Load()
	return since != 0 && now.UnixNano()-since >= int64(peerLost)
}

// applying marks a commit under way for stuck, until the returned func.
func (c *Consumer) applying() (done func()) {
	c.applyingSince.Store(time.Now().UnixNano())
	return func() { c.applyingSince.Store(0) }
}
