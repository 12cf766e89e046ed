package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/storage"
)

// The in-process worker's own JetStream objects, so a bench never touches
// a deployment's INCIDENTS stream.
const (
	benchStream    = "INCIDENTS_BENCH"
	benchDLQStream = "INCIDENTS_BENCH_DLQ"
	benchDurable   = "incidentd-bench"
	benchSubjects  = "bench.incidents.events"
)

// benchStreams are the streams a bench deletes before and after it runs.
var benchStreams = []string{benchStream, benchDLQStream,
	config.ConsumerConfig{Stream: benchStream}.MaxDeliveriesStream()}

// bench is one run's state.
type bench struct {
	o      IO
	f      benchFlags
	log    *zap.Logger
	res    *benchResult
	cfg    config.Config
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   string
	events *eventSource
	scr    scraper
	count  func(context.Context) (int64, error)
	rssMu  sync.Mutex
	// stopRSS ends watchRSS's sampling.
	stopRSS func()
	stop    []func()
	t0      time.Time
	// latencyStored is how many latency-phase messages the stream kept.
	latencyStored int64
	// drainCPU0 is process_cpu_seconds_total when the drain started.
	drainCPU0 float64
	// startWorkerNow releases the in-process worker (nil with --worker-url).
	startWorkerNow func()
	// target is the NATS server given (--nats-url, NATS_URL or the [nats]
	// url of --config); its url is empty when the bench embeds one.
	target natsTarget
}

func runBench(ctx context.Context, o IO, f benchFlags, log *zap.Logger) (*benchResult, error) {
	if f.events < 1 {
		return nil, fmt.Errorf("%w: --events must be at least 1", errUsage)
	}
	if f.rate < 0 {
		return nil, fmt.Errorf("%w: --rate %d: events/s offered in the latency phase, 0 to skip it, not negative", errUsage, f.rate)
	}
	if f.rate > 0 && f.duration <= 0 {
		return nil, fmt.Errorf("%w: --duration %v: the latency phase needs a positive length (or --rate 0 to skip it)", errUsage, f.duration)
	}
	if !(f.duplicates >= 0 && f.duplicates <= 1) {
		return nil, fmt.Errorf("%w: --duplicates %v: a share of the events, from 0 to 1", errUsage, f.duplicates)
	}
	// Only the STATE_* variables reach the in-process worker: the bench picks
	// its own NATS server, streams and HTTP port. NATS_URL is read by
	// resolveNATS, for the bench's connection.
	cfg, err := loadConfigOverride(f.configPath, stateEnv(o.Env), func(c *config.Config) map[string]string {
		if f.backend == "" {
			return nil
		}
		c.State.Backend, c.Warnings = backendFlag(f.backend, "--state-backend", c.State.Backend, c.Warnings)
		return map[string]string{"state.backend": "--state-backend"}
	})
	if err != nil {
		return nil, err
	}
	target, err := resolveNATS(f.natsURL, o, cfg.NATS, f.configPath, "")
	if err != nil {
		return nil, err
	}
	if f.workerURL != "" {
		if err := checkHTTPURL("--worker-url", f.workerURL); err != nil {
			return nil, err
		}
		if err := checkSubjectTemplate(f.subject); err != nil {
			return nil, err
		}
	}
	if f.workerURL != "" && target.url == "" {
		return nil, fmt.Errorf("%w: --worker-url needs the NATS its worker consumes from: --nats-url, NATS_URL or the [nats] url of --config", errUsage)
	}
	gcfg := loadgen.DefaultConfig()
	// Seed-1: eventSource increments it before the first generator.
	gcfg.Seed, gcfg.DuplicateRatio, gcfg.IDPrefix = f.seed-1, f.duplicates, fmt.Sprintf("bench-%d", time.Now().UnixNano())
	// Live event times: incidents stay inside their quiet period for the
	// whole run, so the worker's quiet-period sweep has nothing to do.
	gcfg.Start = time.Now().UTC()
	b := &bench{o: o, f: f, log: log, res: newBenchResult(), events: newEventSource(gcfg), target: target}
	defer b.cleanup()
	if err := b.connect(); err != nil {
		return nil, err
	}
	if err := b.prepare(ctx, cfg); err != nil {
		return nil, err
	}
	before, err := b.scr.scrape(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.load(ctx); err != nil {
		return b.res, err
	}
	if err := b.drain(ctx, before); err != nil {
		return b.res, err
	}
	if err := b.latency(ctx); err != nil {
		return b.res, err
	}
	return b.res, b.check(ctx, before)
}

func (b *bench) cleanup() {
	for i := len(b.stop) - 1; i >= 0; i-- {
		b.stop[i]()
	}
}

// connect starts the embedded nats-server when no URL is given, and dials.
func (b *bench) connect() error {
	t := b.target
	b.res.NATS = t.redacted()
	if t.url == "" {
		dir, err := os.MkdirTemp("", "incidentctl-bench-nats-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		b.stop = append(b.stop, func() { _ = os.RemoveAll(dir) })
		s, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: dir}, b.log)
		if err != nil {
			return err
		}
		b.stop = append(b.stop, s.Shutdown)
		t.url, t.from = s.ClientURL(), "embedded"
		b.res.NATS = "embedded"
	}
	nc, err := connect(t)
	if err != nil {
		return err
	}
	b.stop = append(b.stop, nc.Close)
	b.nc = nc
	b.js, err = jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// prepare makes the worker config and, in process, fresh bench streams and
// the worker; with --worker-url it only points the scraper at it.
func (b *bench) prepare(ctx context.Context, cfg config.Config) error {
	if b.f.workerURL != "" {
		if err := b.workerStream(ctx, &cfg.Consumer); err != nil {
			return err
		}
		b.cfg = cfg
		b.subj = b.f.subject
		b.res.Worker, b.res.Store = redactURL(b.f.workerURL), "(see the worker)"
		b.scr = httpScraper{url: b.f.workerURL}
		client := newAPIClient(b.f.workerURL)
		b.count = func(ctx context.Context) (int64, error) { return client.Count(ctx, storage.Filter{}) }
		return nil
	}
	if err := b.workerConfig(&cfg); err != nil {
		return err
	}
	b.cfg = cfg
	b.subj = benchSubjects + ".{source}"
	for _, s := range benchStreams {
		if err := b.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("bench: delete stream %s: %w", s, err)
		}
	}
	if !b.f.keep {
		b.stop = append(b.stop, func() {
			for _, s := range benchStreams {
				_ = b.js.DeleteStream(context.Background(), s)
			}
		})
	}
	if err := b.setupStreams(ctx, cfg); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b.scr = gatherScraper{g: reg}
	return b.startWorker(cfg, reg)
}

// workerConfig points the in-process worker at the bench NATS (with the
// [nats] credentials of --config), streams, store directory and a free HTTP
// port.
func (b *bench) workerConfig(cfg *config.Config) error {
	cfg.NATS.URL, cfg.NATS.URLFrom = b.nc.ConnectedUrl(), "bench"
	cfg.HTTP.Listen = "127.0.0.1:0"
	c := &cfg.Consumer
	c.Stream, c.DLQStream, c.Durable = benchStream, benchDLQStream, benchDurable
	c.Subjects, c.DLQSubjectPrefix = []string{benchSubjects + ".>"}, "bench.incidents.dlq"
	logWarnings(b.log, cfg.Warnings) // --state-backend is in already (runBench's override)
	// A Pebble store is always the bench's own: a --config file's path may
	// name a real deployment's directory, which a bench must not fill.
	switch {
	case b.f.stateDir != "":
		cfg.State.Path = b.f.stateDir
	case cfg.State.Backend == config.BackendPebble:
		dir, err := os.MkdirTemp("", "incidentctl-bench-state-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if !b.f.keep {
			b.stop = append(b.stop, func() { _ = os.RemoveAll(dir) })
		}
		cfg.State.Path = filepath.Join(dir, "pebble")
	}
	b.res.Batch = c.BatchSize
	b.res.Store = string(cfg.State.Backend)
	if cfg.State.Backend == config.BackendPebble {
		b.res.Store += fmt.Sprintf(" (sync=%t)", cfg.State.Pebble.Sync)
	}
	return cfg.Validate()
}

// startWorker runs app in this process until cleanup.
func (b *bench) startWorker(cfg config.Config, reg *prometheus.Registry) error {
	app.TuneRuntime(cfg, os.LookupEnv) // the GC settings incidentd runs with
	a, err := app.New(cfg, b.log.Named("worker"), reg)
	if err != nil {
		return fmt.Errorf("bench worker: %w", err)
	}
	b.res.Worker = "in-process " + a.HTTPURL()
	b.count = func(ctx context.Context) (int64, error) { return a.Store().Count(ctx, storage.Filter{}) }
	// The worker starts after the load: hold it until then.
	start := make(chan struct{})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		select {
		case <-start:
			done <- a.Run(runCtx)
		case <-runCtx.Done():
			done <- a.Run(runCtx)
		}
	}()
	b.startWorkerNow = func() { close(start) }
	b.stop = append(b.stop, func() {
		cancel()
		if err := <-done; err != nil {
			b.log.Warn("bench worker stopped", zap.Error(err))
		}
	})
	return nil
}

// stateEnv passes through the STATE_* variables of env and hides the rest.
func stateEnv(env func(string) (string, bool)) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if env == nil || !strings.HasPrefix(k, "STATE_") {
			return "", false
		}
		return env(k)
	}
}

// setupStreams creates the bench's streams and consumer. Right after the
// streams of an earlier run were deleted, nats-server can answer "stream
// not found" to the consumer's creation although the stream was just
// created (seen once in about 100 back-to-back runs): that is retried a few
// times.
func (b *bench) setupStreams(ctx context.Context, cfg config.Config) error {
	for attempt := 1; ; attempt++ {
		_, err := consumer.Setup(ctx, b.js, cfg.Consumer)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) || attempt == 5 {
			return fmt.Errorf("bench setup: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}
