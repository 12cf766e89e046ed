// Package consumer is the ingestion loop of the pipeline: it sets up the
// JetStream stream and the shared durable pull consumer, pulls messages,
// decodes and fingerprints them, folds each batch into incidents, commits it
// to the store in one durable write and only then acks its messages. Bad
// input goes to the dead-letter stream; store failures pause pulling.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
)

// Errors reported by Ready and Run.
var (
	// ErrNotBound means the durable consumer is not (or no longer) bound.
	ErrNotBound = errors.New("consumer: not bound to the durable consumer")
	// ErrStoreFailing means the last commit failed; pulling is paused.
	ErrStoreFailing = errors.New("consumer: store not writable")
	// ErrCommitStuck means a commit has run for longer than the InProgress
	// interval (ack_wait/3): the store is blocked (a frozen disk, a stalled
	// write) though no error came back.
	ErrCommitStuck = errors.New("consumer: a commit has not returned")
	// ErrCommitAbandoned is what Run returns when its shutdown gave up a
	// commit after DrainTimeout: the messages of that batch stay un-acked
	// and JetStream redelivers them after ack_wait. Nothing is lost, but
	// the shutdown was not clean.
	ErrCommitAbandoned = errors.New("consumer: a commit did not finish at shutdown; its messages stay un-acked for redelivery")
)

// Config is the consumer's configuration: the [consumer] and [dedupe] tables
// plus knobs tests use.
type Config struct {
	Consumer config.ConsumerConfig
	Dedupe   config.DedupeConfig
	// IncidentRetention is state.incident_retention: the sweep deletes
	// Resolved and Closed incidents whose last_seen and updated_at are
	// older (0 keeps them forever).
	IncidentRetention time.Duration
	// InProgressEvery is how often messages held longer than it get an
	// InProgress (AckWait/3 when zero; negative disables it, for tests of
	// redelivery).
	InProgressEvery time.Duration
	// DrainTimeout bounds the commit of the messages in hand at shutdown
	// (AckWait when zero).
	DrainTimeout time.Duration
	// Serial commits one batch at a time, without overlapping the fold of
	// the next batch with the write of the previous one (for comparison).
	Serial bool
	// SkipSetup binds to an existing stream and consumer instead of creating
	// or updating them.
	SkipSetup bool
	// SkipCatchUp leaves the messages a stopped worker held to their
	// redelivery instead of reading them at start (for tests of the
	// fallback; see inherited).
	SkipCatchUp bool
}

// Consumer runs the fetch → decode → fold → commit → ack loop.
type Consumer struct {
	cfg     Config
	ipEvery time.Duration
	// orphanRetries is how many deliveries of an acknowledge or resolve
	// may be deferred: consumer.orphan_retries, at most max_deliver-1.
	orphanRetries int
	// recentAcks holds the sequences this worker acked or dead-lettered
	// above the ack floor.
	recentAcks ackedSeqs
	// recentDeferred holds the sequences of the acknowledges and resolves
	// this worker deferred, above the ack floor: no later orphan depends
	// on them, wherever they are redelivered.
	recentDeferred ackedSeqs
	// leftStuck is set by the loop when its drain left a commit that did
	// not return: nothing then waits for the pipeline.
	leftStuck bool
	// inherit is set once the consumer is bound: what messages delivered
	// before this worker may still come back.
	inherit inherited
	// peers hears the other workers of the consumer (nil: read_ahead off).
	peers *peers
	// ahead is what readAhead has read of the stream above the ack floor.
	ahead  window
	nc     *nats.Conn
	js     jetstream.JetStream
	store  storage.Store
	m      *metrics.Metrics
	log    *zap.Logger
	dec    *incident.Decoder
	fp     *dedupe.Fingerprinter
	folder *dedupe.Folder

	bound atomic.Bool
	// lastReceived is the stream sequence of the last message received,
	// for the warning of a pull that went silent.
	lastReceived atomic.Uint64
	// acksBuffered counts the acks sent while the connection to NATS was
	// down since it was last up: they wait in the client's reconnect
	// buffer, and a shutdown before it reconnects loses them.
	acksBuffered atomic.Int64
	storeErr     atomic.Pointer[error]
	// applyingSince is when the commit under way began (unix nanoseconds;
	// 0 between commits), for the peers' stuck beat.
	applyingSince atomic.Int64
	failing       chan struct{} // signalled by a failing commit so pulling stops
	// committed counts the batches committed and acked; succeeded is
	// signalled with each, so a paused loop resumes at once.
	committed atomic.Uint64
	succeeded chan struct{}
	dlq       *deadLetters
	// dlqSetup is set while the dead-letter stream is being set up again.
	dlqSetup atomic.Bool

	lastSweep time.Time // only touched by the lag poller
	// ackLimited: the last consumer info had num_ack_pending at
	// max_ack_pending (only touched by the lag poller).
	ackLimited bool
	// pruneFrom is where the retention walk goes on at the next sweep
	// (zero: from the cutoff); only touched by the lag poller.
	pruneFrom storage.PruneCursor
}

// New checks the configuration and returns a consumer; Run starts it.
func New(cfg Config, nc *nats.Conn, store storage.Store, m *metrics.Metrics, log *zap.Logger) (*Consumer, error) {
	// Dead-letter publishes are asynchronous; a lost PubAck must not hold
	// the message forever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(dlqPublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("consumer jetstream: %w", err)
	}
	fp, err := dedupe.NewFingerprinter(cfg.Dedupe.Fields, cfg.Dedupe.SourceFields)
	if err != nil {
		return nil, fmt.Errorf("consumer fingerprint: %w", err)
	}
	if cfg.Consumer.BatchSize <= 0 {
		return nil, fmt.Errorf("consumer: batch_size must be positive, got %d", cfg.Consumer.BatchSize)
	}
	ip := cfg.InProgressEvery
	if ip == 0 {
		ip = cfg.Consumer.AckWait.Duration / 3
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = cfg.Consumer.AckWait.Duration
	}
	log = log.Named("consumer")
	c := &Consumer{
		cfg: cfg, ipEvery: ip, orphanRetries: min(cfg.Consumer.OrphanRetries, cfg.Consumer.MaxDeliver-1), nc: nc, js: js, store: store, m: m, log: log,
		dec:       incident.NewDecoder(cfg.Consumer.MaxEventBytes).LimitClockSkew(cfg.Consumer.MaxClockSkew.Duration),
		fp:        fp,
		folder:    dedupe.NewFolder(cfg.Dedupe.Window.Duration, newID),
		failing:   make(chan struct{}, 1),
		succeeded: make(chan struct{}, 1),
	}
	c.dlq = newDeadLetters(c)
	if cc := cfg.Consumer; cc.ReadAhead && c.orphanRetries > 0 {
		// A dead worker's messages are back within ack_wait; the
		// acknowledges and resolves after them end their deferrals later.
		c.peers = newPeers(cc.Stream, cc.Durable, cc.AckWait.Duration+time.Duration(c.orphanRetries+2)*cc.OrphanRetryDelay.Duration+peerLost)
	}
	return c, nil
}

// readingAhead reports whether readAhead may run now: a peer died holding
// messages not long ago (read_ahead on).
func (c *Consumer) readingAhead(now time.Time) bool {
	return c.peers != nil && c.peers.suspect(now)
}

// dlqPublishTimeout bounds the wait for the dead-letter stream's PubAck.
const dlqPublishTimeout = 10 * time.Second

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Ready reports nil when the consumer is bound and the last commit succeeded.
func (c *Consumer) Ready() error {
	if !c.bound.Load() {
		return ErrNotBound
	}
	if p := c.storeErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrStoreFailing, *p)
	}
	if since := c.applyingSince.Load(); since != 0 {
		if d := time.Since(time.Unix(0, since)); d >= c.slowCommit() {
			return fmt.Errorf("%w for %v", ErrCommitStuck, d.Round(time.Second))
		}
	}
	return nil
}

// slowCommit is how long a commit runs before it counts as stuck for
// Ready: the InProgress interval, ack_wait/3 by default.
func (c *Consumer) slowCommit() time.Duration {
	if c.ipEvery > 0 {
		return c.ipEvery
	}
	return c.cfg.Consumer.AckWait.Duration / 3
}

// Run sets up the stream and consumer (unless SkipSetup), then pulls and
// commits until ctx is done, then drains: stop pulling, commit and ack the
// messages in hand, finish dead-lettering. It returns nil after a clean
// drain.
func (c *Consumer) Run(ctx context.Context) error {
	err := c.run(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) && !errors.Is(err, ErrCommitAbandoned) {
		return nil // shut down before the loop started
	}
	return err
}

// bind sets up the streams and the consumer (unless SkipSetup) and returns
// the consumer handle, and whether this worker created the durable
// consumer (it was missing).
func (c *Consumer) bind(ctx context.Context) (jetstream.Consumer, bool, error) {
	cc := c.cfg.Consumer
	var created bool
	if !c.cfg.SkipSetup {
		rep, err := Setup(ctx, c.js, cc)
		if err != nil {
			return nil, false, err
		}
		created = rep.ConsumerCreated
		for _, a := range rep.Actions {
			c.log.Info("jetstream setup", zap.String("action", a))
		}
	}
	cons, err := c.js.Consumer(ctx, cc.Stream, cc.Durable)
	if err != nil {
		return nil, created, fmt.Errorf("bind consumer %s: %w", cc.Durable, err)
	}
	return cons, created, nil
}

func (c *Consumer) run(ctx context.Context) error {
	cons, _, err := c.bind(ctx) // a consumer created at start is no recreation
	if err != nil {
		return err
	}
	if err := c.inheritPending(ctx, cons); err != nil {
		return err
	}
	unsub, err := c.watchMaxDeliveries(ctx)
	if err != nil {
		return err
	}
	defer unsub()
	c.bound.Store(true)
	defer c.bound.Store(false)

	var wg sync.WaitGroup
	pollCtx, stopPoll := context.WithCancel(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); c.pollLag(pollCtx, cons) }()
	go func() { defer wg.Done(); c.dlq.run() }()
	stopPeers, peersDone := make(chan struct{}), make(chan struct{})
	if c.peers != nil {
		go func() { defer close(peersDone); c.runPeers(stopPeers, func() bool { return err == nil }) }()
	} else {
		close(peersDone)
	}
	err = c.loop(ctx, cons)
	close(stopPeers)
	<-peersDone
	stopPoll()
	c.dlq.close()
	wg.Wait()
	return err
}
