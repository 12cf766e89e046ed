// Package natsembed runs a nats-server with JetStream inside the incidentd
// process: the single-binary default mode (no [nats] url) and the tests use
// it in place of an external NATS deployment. It is a real server that other
// programs (the nats CLI, incidentctl) can connect to on its listen address.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrNotReady is returned by New when the server does not accept connections
// in time.
var ErrNotReady = errors.New("natsembed: server not ready for connections")

// ErrStoreDirLocked is returned by New when another process (another
// embedded server) holds the store directory.
var ErrStoreDirLocked = errors.New("natsembed: store directory in use")

// lockFile is the file in the store directory that New locks.
const lockFile = "incidentd.lock"

// Config says where the embedded server listens and keeps its JetStream data.
type Config struct {
	// Listen is host:port for clients; port 0 picks a free one.
	Listen string
	// StoreDir is the JetStream storage directory.
	StoreDir string
	// StartTimeout bounds the wait for the server to accept connections
	// (10s when zero).
	StartTimeout time.Duration
	// SyncInterval is how often JetStream flushes its files to disk
	// (nats-server's default, 2m, when zero); SyncAlways flushes after
	// every message instead.
	SyncInterval time.Duration
	SyncAlways   bool
}

// Server is a running embedded nats-server.
type Server struct {
	srv  *server.Server
	log  *zap.Logger
	lock *os.File // holds the store directory's lock until Shutdown
}

// New starts the server and waits until it accepts connections.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsembed listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsembed listen %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	lock, err := lockStoreDir(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	s, err := start(cfg, host, port, log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// start runs the server on host:port and waits for it to accept
// connections.
func start(cfg Config, host string, port int, log *zap.Logger) (*Server, error) {
	opts := &server.Options{
		ServerName:            "incidentd-embedded",
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              cfg.StoreDir,
		NoSigs:                true,
		MaxPayload:            8 << 20,
		DisableShortFirstPing: true,
		SyncInterval:          cfg.SyncInterval,
		SyncAlways:            cfg.SyncAlways,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	log = log.Named("nats-server")
	// The server's lines carry no stack worth printing: where this adapter
	// was called from says nothing about them.
	lg := &logger{s: log.WithOptions(zap.AddStacktrace(zapcore.FatalLevel + 1)).Sugar(), fatal: make(chan string, 1)}
	srv.SetLoggerV2(lg, false, false, false)
	srv.Start()
	wait := cfg.StartTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if err := waitReady(srv, lg.fatal, wait); err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("%w (listen %s): %s", ErrNotReady, cfg.Listen, err)
	}
	s := &Server{srv: srv, log: log}
	log.Info("embedded nats-server started", zap.String("url", s.ClientURL()), zap.String("store_dir", cfg.StoreDir), zap.String("sync", s.SyncPolicy()), zap.Int64("max_store_bytes", s.maxStore()))
	return s, nil
}

// ClientURL is the nats:// URL clients connect to (with the port actually
// bound).
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server, waits for it to finish and releases the store
// directory.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	if s.lock != nil {
		s.lock.Close()
	}
}

// logger adapts zap to the nats-server logger interface.
// waitReady waits until srv accepts connections, for at most wait, and
// stops early when the server reports a fatal error (a port in use: its
// accept loop gives up, and waiting longer would change nothing).
func waitReady(srv *server.Server, fatal <-chan string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %s", wait)
		}
	}
}

// logger adapts zap to the server's logger; the first fatal message also
// goes to fatal, for waitReady.
type logger struct {
	s     *zap.SugaredLogger
	fatal chan string
}

func (l *logger) Noticef(format string, v ...any) { l.s.Debugf(format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.s.Warnf(format, v...) }
func (l *logger) Fatalf(format string, v ...any) {
	l.s.Errorf(format, v...)
	select {
	case l.fatal <- fmt.Sprintf(format, v...):
	default:
	}
}
func (l *logger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }
func (l *logger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l *logger) Tracef(format string, v ...any) {}

// SyncPolicy is how often the server flushes its JetStream files to disk,
// as it applies it: "always" (after every message) or the interval.
func (s *Server) SyncPolicy() string {
	jc := s.srv.JetStreamConfig()
	switch {
	case jc == nil:
		return "none"
	case jc.SyncAlways:
		return "always"
	}
	return jc.SyncInterval.String()
}

// maxStore is the JetStream file storage the server allows itself: set
// from the disk space free at start, so a start on a nearly full disk
// keeps a small limit until the next start.
func (s *Server) maxStore() int64 {
	if jc := s.srv.JetStreamConfig(); jc != nil {
		return jc.MaxStore
	}
	return 0
}
