// Package app wires the worker together: the embedded nats-server (when no
// NATS URL is configured) or the connection to an external one, the store
// from the factory, the consumer, the metrics and the HTTP listener (query
// API and, with http.allow_writes, its operator state change; /metrics,
// /healthz, /readyz). cmd/incidentd and `incidentctl bench`
// both run a worker through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/backend"
)

// Version is the build's version, set with -ldflags "-X
// github.com/llm-im/incidentd/app.Version=v1.2.3".
var Version = "dev"

// ErrNATSDisconnected is the readiness failure while the NATS connection is
// down.
var ErrNATSDisconnected = errors.New("app: NATS not connected")

// ErrNATSClosed is Run's error when the NATS client closed its connection
// for good while the worker was not stopping: it no longer reconnects, so
// the worker stops (and its process exits 1) for the orchestrator to
// start it again rather than stay up with nothing to read.
var ErrNATSClosed = errors.New("nats connection closed for good")

// App is one worker: everything is started by New and stopped by Run when its
// context ends.
type App struct {
	cfg   config.Config
	log   *zap.Logger
	reg   prometheus.Registerer
	gath  prometheus.Gatherer
	m     *metrics.Metrics
	embed *natsembed.Server
	nc    *nats.Conn
	store storage.Store
	cons  atomic.Pointer[consumer.Consumer] // set by Run; read by the readiness check at any time
	ln    net.Listener
	srv   *http.Server
	// mln and msrv serve the metrics endpoint alone when metrics.listen
	// is set; nil otherwise.
	mln  net.Listener
	msrv *http.Server
	api  *api.Handler
	// probe pings a store that is a Pinger (Redis) for /readyz; nil
	// otherwise.
	probe *storeProbe

	// ConsumerConfig lets tests and the benchmark adjust knobs that are not
	// in the TOML file; set it between New and Run.
	ConsumerConfig *consumer.Config
	// HTTPLimits are the HTTP listeners' timeouts and header limit,
	// DefaultHTTPLimits unless changed between New and Run (tests).
	HTTPLimits HTTPLimits
	// httpLimits are the limits in force, read by readBody.
	httpLimits HTTPLimits

	// stopping is set before the worker closes its NATS connection
	// itself; natsClosed is closed when the connection closed without it
	// (its last error in natsClosedErr).
	stopping      atomic.Bool
	natsClosed    chan struct{}
	natsClosedErr error
	closedOnce    sync.Once
	// natsLogs rate-limits the repeated NATS client warnings.
	natsLogs natsLogLimiter
}

// New starts the embedded nats-server (when cfg.NATS.URL is empty), connects
// to NATS, opens the store, binds the HTTP listener and prepares the
// consumer. reg receives every collector and, when it is also a
// prometheus.Gatherer (a *prometheus.Registry), is what /metrics serves; nil
// means a fresh registry with the Go and process collectors.
func New(cfg config.Config, log *zap.Logger, reg prometheus.Registerer) (*App, error) {
	return NewContext(context.Background(), cfg, log, reg)
}

// ErrStartStopped is wrapped by NewContext's error when ctx ended before the
// worker was started (a SIGINT or SIGTERM during start-up), with ctx's own
// error.
var ErrStartStopped = errors.New("stop requested during start-up")

// NewContext is New, given up as soon as ctx ends: a stop asked for while
// the store is being reached (a Redis that does not answer may take three
// dial timeouts to fail) or between two steps releases what was started
// and returns an error wrapping ErrStartStopped and ctx's error.
func NewContext(ctx context.Context, cfg config.Config, log *zap.Logger, reg prometheus.Registerer) (_ *App, err error) {
	if err := cfg.ValidateWorker(); err != nil {
		return nil, err
	}
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	gath, ok := reg.(prometheus.Gatherer)
	if !ok {
		gath = prometheus.DefaultGatherer
	}
	a := &App{cfg: cfg, log: log, reg: reg, gath: gath, natsClosed: make(chan struct{})}
	defer func() { // a is not the named result: "return nil, err" must not nil it
		if err != nil {
			a.abort()
			if ctx.Err() != nil && !errors.Is(err, ErrStartStopped) {
				err = fmt.Errorf("%w: %w", ErrStartStopped, err)
			}
		}
	}()
	if a.m, err = metrics.New(reg, metrics.Build{Version: Version}); err != nil {
		return nil, err
	}
	if err = a.connect(); err != nil {
		return nil, err
	}
	if err = stopped(ctx, "connecting to NATS"); err != nil {
		return nil, err
	}
	if a.store, err = backend.OpenContext(ctx, cfg.State, log, reg); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err = stopped(ctx, "opening the store"); err != nil {
		return nil, err
	}
	cc := consumer.Config{Consumer: cfg.Consumer, Dedupe: cfg.Dedupe, IncidentRetention: cfg.State.IncidentRetention.Duration}
	a.ConsumerConfig = &cc
	if a.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	if cfg.Metrics.Listen != "" {
		if a.mln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return nil, fmt.Errorf("metrics listen: %w", err)
		}
		a.msrv = newHTTPServer(a.metricsRoutes(), DefaultHTTPLimits, log)
	}
	a.HTTPLimits, a.httpLimits = DefaultHTTPLimits, DefaultHTTPLimits
	a.srv = newHTTPServer(a.routes(), DefaultHTTPLimits, log)
	a.m.Health.Add("nats", func() error {
		if !a.nc.IsConnected() {
			return fmt.Errorf("%w (%s)", ErrNATSDisconnected, a.nc.Status())
		}
		return nil
	})
	a.m.Health.Add("consumer", func() error {
		c := a.cons.Load()
		if c == nil {
			return consumer.ErrNotBound
		}
		return c.Ready()
	})
	if p, ok := a.store.(Pinger); ok {
		a.probe = newStoreProbe(p, log, a.m)
		a.m.Health.Add("store", a.probe.check)
	}
	return a, nil
}

// stopped is the error of a start given up after step, nil while ctx
// has not ended.
func stopped(ctx context.Context, step string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w (after %s): %w", ErrStartStopped, step, err)
	}
	return nil
}

// connect starts the embedded server when configured, then dials NATS.
func (a *App) connect() error {
	n := a.cfg.NATS
	url, from := n.URL, n.URLFrom
	opts := append(NATSOptions(n),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// Keep trying through a rejected login (a password rotated on
		// the server before the worker's secret): nats.go gives up
		// after the same auth error twice otherwise.
		nats.IgnoreAuthErrorAbort(),
		nats.ClosedHandler(a.natsClosedHandler),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				a.m.NATSErrors.WithLabelValues(metrics.NATSDisconnected).Inc()
				a.log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { a.log.Info("nats reconnected", zap.String("url", connectedURL(c))) }),
		nats.ErrorHandler(a.natsError),
	)
	if a.cfg.Embedded() {
		s, err := natsembed.New(natsembed.Config{Listen: n.EmbeddedListen, StoreDir: n.EmbeddedStoreDir,
			SyncInterval: n.EmbeddedSyncInterval.Every, SyncAlways: n.EmbeddedSyncInterval.Always}, a.log)
		if err != nil {
			return err
		}
		a.embed = s
		url, from = s.ClientURL(), "embedded"
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return NATSConnectError(url, from, err)
	}
	a.nc = nc
	a.log.Info("nats connected", zap.String("url", connectedURL(nc)), zap.Bool("embedded", a.embed != nil))
	return nil
}

// natsClosedHandler is told when the connection is closed: by the worker
// itself at its shutdown, or by the client giving up, which Run turns into
// ErrNATSClosed.
func (a *App) natsClosedHandler(c *nats.Conn) {
	if a.stopping.Load() {
		return
	}
	a.closedOnce.Do(func() {
		a.natsClosedErr = c.LastError()
		close(a.natsClosed)
	})
}

// closeNATS closes the connection as the worker's own decision.
func (a *App) closeNATS() {
	a.stopping.Store(true)
	a.nc.Close()
}

// connectedURL is the URL of the server c is connected to, with its secrets
// masked as in the logged configuration (config.RedactNATSURL): the
// password and a token (a user without a password), which the client's
// ConnectedUrlRedacted would show.
func connectedURL(c *nats.Conn) string { return config.RedactNATSURL(c.ConnectedUrl()) }

// natsError counts and logs the NATS client's asynchronous errors. A slow
// consumer is the one that matters: the client dropped messages, and
// JetStream redelivers them only after ack_wait.
//
// An authorization failure (the server refused the worker's credentials at
// a reconnection; the client keeps trying every second) and a permissions
// violation (one per refused publish or subscribe, which can come every
// 250 ms) are logged once a minute for each distinct error, with how many
// were not logged since; every one is counted.
func (a *App) natsError(_ *nats.Conn, sub *nats.Subscription, err error) {
	kind := metrics.NATSErrorKind(err)
	a.m.NATSErrors.WithLabelValues(kind).Inc()
	fields := []zap.Field{zap.String("kind", kind), zap.Error(err)}
	if kind == metrics.NATSAuth || kind == metrics.NATSPermission {
		log, suppressed := a.natsLogs.allow(kind+" "+err.Error(), time.Now())
		if !log {
			return
		}
		fields = append(fields, zap.Int("not_logged_since", suppressed))
		if kind == metrics.NATSAuth {
			fields = append(fields, zap.String("hint", "the server refused the credentials of [nats]; reconnecting every second until it accepts them"))
		}
	}
	if sub != nil {
		if msgs, bytes, perr := sub.Pending(); perr == nil {
			fields = append(fields, zap.Int("pending_msgs", msgs), zap.Int("pending_bytes", bytes))
		}
	}
	a.log.Warn("nats client error", fields...)
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	if a.msrv == nil {
		mux.Handle(a.cfg.Metrics.Path, api.ReadOnly(metrics.Handler(a.gath)))
		if a.cfg.Metrics.Pprof {
			registerPprof(mux)
		}
	}
	mux.Handle("/healthz", api.ReadOnly(metrics.HealthzHandler()))
	mux.Handle("/readyz", api.ReadOnly(a.m.Health.ReadyzHandler()))
	h := api.New(a.storeForAPI(), a.log)
	a.api = h
	if a.cfg.HTTP.AllowWrites {
		h.EnableWrites(a.store, a.m.ObserveOperator)
		a.log.Info("api: operator state changes enabled (http.allow_writes)", zap.String("path", "POST "+api.StatePath))
	}
	h.Register(mux)
	return readBody(api.Canonical(mux), &a.httpLimits)
}

// metricsRoutes is the metrics listener's handler: the endpoint alone.
func (a *App) metricsRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(a.cfg.Metrics.Path, api.ReadOnly(metrics.Handler(a.gath)))
	if a.cfg.Metrics.Pprof {
		registerPprof(mux)
	}
	mux.Handle("/", api.NotFoundHandler())
	return readBody(api.Canonical(mux), &a.httpLimits)
}

func (a *App) storeForAPI() api.Reader { return a.store }

// HTTPAddr is the address the HTTP listener is bound to (useful with
// http.listen = "127.0.0.1:0").
func (a *App) HTTPAddr() string { return a.ln.Addr().String() }

// MetricsAddr is the address the metrics endpoint is served on: its own
// listener's when metrics.listen is set, else HTTPAddr.
func (a *App) MetricsAddr() string {
	if a.mln != nil {
		return a.mln.Addr().String()
	}
	return a.HTTPAddr()
}

// HTTPURL is "http://" + HTTPAddr, with a wildcard host replaced by
// 127.0.0.1.
func (a *App) HTTPURL() string {
	host, port, _ := net.SplitHostPort(a.HTTPAddr())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// NATSURL is the URL of the NATS server the worker uses: the embedded
// server's client URL (with its bound port), or the configured one, with
// the credentials it holds (to connect with it): log it only through
// config.RedactNATSURL.
func (a *App) NATSURL() string {
	if a.embed != nil {
		return a.embed.ClientURL()
	}
	return a.cfg.NATS.URL
}

// Store is the worker's store (for in-process verification by the
// benchmark and tests).
func (a *App) Store() storage.Store { return a.store }

// Metrics is the worker's collectors.
func (a *App) Metrics() *metrics.Metrics { return a.m }

// Run serves HTTP and runs the consumer until ctx ends, then shuts down in
// order, logging each step's duration: stop pulling, commit and ack the
// batch in hand, close the store, stop HTTP (draining requests), close the
// NATS connection, stop the embedded server. The App cannot be reused.
func (a *App) Run(ctx context.Context) error {
	cons, err := consumer.New(*a.ConsumerConfig, a.nc, a.store, a.m, a.log)
	if err != nil {
		a.abort()
		return err
	}
	a.cons.Store(cons)
	a.applyHTTPLimits(a.HTTPLimits)
	httpErr := make(chan error, 2) // one per server
	served := make(chan struct{})
	a.log.Info("http listening", zap.String("addr", a.HTTPAddr()))
	go func() {
		defer close(served)
		if err := a.srv.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("http serve: %w", err)
		}
	}()
	metricsServed := make(chan struct{})
	if a.msrv != nil {
		a.log.Info("metrics listening", zap.String("addr", a.mln.Addr().String()), zap.String("path", a.cfg.Metrics.Path))
		go func() {
			defer close(metricsServed)
			if err := a.msrv.Serve(a.mln); !errors.Is(err, http.ErrServerClosed) {
				httpErr <- fmt.Errorf("metrics serve: %w", err)
			}
		}()
	} else {
		close(metricsServed)
	}
	if a.cfg.Metrics.Pprof {
		a.log.Info("profiles served (metrics.pprof); no authentication: keep the listener private",
			zap.String("addr", a.MetricsAddr()), zap.String("path", config.PprofPath))
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The store probe runs until the shutdown begins, so that closing the
	// store is not taken for an outage.
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		if a.probe != nil {
			a.probe.run(probeCtx, a.ConsumerConfig.Consumer.LagPollInterval.Duration)
		}
	}()
	consErr := make(chan error, 1)
	go func() { consErr <- cons.Run(runCtx) }()
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutdown requested")
		runErr = <-consErr
	case runErr = <-consErr:
		if runErr != nil {
			a.log.Error("consumer stopped", zap.Error(runErr))
		}
	case err := <-httpErr:
		runErr = err
		cancel()
		<-consErr
	case <-a.natsClosed:
		runErr = ErrNATSClosed
		if a.natsClosedErr != nil {
			runErr = fmt.Errorf("%w (last error: %w)", ErrNATSClosed, a.natsClosedErr)
		}
		a.log.Error("nats connection closed for good: the client stopped reconnecting; stopping the worker to be restarted", zap.Error(a.natsClosedErr))
		cancel()
		<-consErr
	}
	stopProbe()
	<-probed
	if err := a.shutdown(); err != nil && runErr == nil {
		runErr = err
	}
	<-served
	<-metricsServed
	return runErr
}

// step runs one shutdown step and logs its duration.
func (a *App) step(name string, f func() error) error {
	t := time.Now()
	err := f()
	if err != nil {
		a.log.Warn("shutdown: "+name, zap.Duration("took", time.Since(t)), zap.Error(err))
		return err
	}
	a.log.Info("shutdown: "+name, zap.Duration("took", time.Since(t)))
	return nil
}

func (a *App) shutdown() error {
	var errs []error
	// Operator writes stop before the store closes; reads and probes go
	// on until HTTP stops.
	a.api.StopWrites()
	errs = append(errs, a.step("store closed", func() error { return a.closeStore() }))
	a.stopHTTP("http stopped", a.srv, a.HTTPLimits.ShutdownGrace)
	if a.msrv != nil {
		a.stopHTTP("metrics http stopped", a.msrv, a.HTTPLimits.ShutdownGrace)
	}
	errs = append(errs, a.step("nats connection closed", func() error {
		a.closeNATS()
		return nil
	}))
	if a.embed != nil {
		errs = append(errs, a.step("embedded nats-server stopped", func() error {
			a.embed.Shutdown()
			return nil
		}))
	}
	return errors.Join(errs...)
}

// storeCloseWait bounds closing the store at shutdown: a close behind a
// write blocked on a frozen disk would never return.
const storeCloseWait = 10 * time.Second

func (a *App) closeStore() error {
	closed := make(chan error, 1)
	go func() { closed <- a.store.Close() }()
	select {
	case err := <-closed:
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			return fmt.Errorf("close store: %w", err)
		}
		return nil
	case <-time.After(storeCloseWait):
		return fmt.Errorf("close store: did not return in %v (a write blocked on the disk?); leaving it", storeCloseWait)
	}
}

// abort releases what New started, after a failure.
func (a *App) abort() {
	if a.ln != nil {
		_ = a.ln.Close()
	}
	if a.mln != nil {
		_ = a.mln.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	if a.nc != nil {
		a.closeNATS()
	}
	if a.embed != nil {
		a.embed.Shutdown()
	}
}

// natsLogLimiter lets one warning per key through each natsLogEvery.
type natsLogLimiter struct {
	mu   sync.Mutex
	keys map[string]*natsLogKey
}

type natsLogKey struct {
	last       time.Time
	suppressed int
}

// natsLogEvery is how often a repeated NATS client warning is logged.
const natsLogEvery = time.Minute

// allow reports whether the warning key is logged at now and how many of
// it were not logged since the last one that was.
func (l *natsLogLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]*natsLogKey{}
	}
	k, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= 1000 { // distinct subjects: bound the memory
			clear(l.keys)
		}
		l.keys[key] = &natsLogKey{last: now}
		return true, 0
	}
	if now.Sub(k.last) < natsLogEvery {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return true, n
}
