package redistest

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options shapes a standalone server.
type Options struct {
	// RequirePass sets requirepass (the default user's password).
	RequirePass string
	// ACLUser and ACLPassword add an ACL user with every permission; the
	// default user is then disabled, so only that user gets in.
	ACLUser, ACLPassword string
	// TLS serves TLS only, with certificates generated for the test (the
	// server requires no client certificate unless TLSClientAuth is set).
	TLS, TLSClientAuth bool
	// AppendOnly turns on the AOF with appendfsync everysec.
	AppendOnly bool
	// Extra config lines.
	Extra []string
	// Port is the port to listen on (a test that reaches for the server
	// before it starts takes one from FreePort); 0 picks a free one.
	Port int
}

// Server is a running standalone redis-server.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Certs is set for TLS servers.
	Certs *Certs
	opts  Options
	proc  *process
	conf  []string // the config lines beyond start's, for Restart
}

// StartStandalone starts a redis-server as opts says and waits until it
// answers PING.
func StartStandalone(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t, "redis-server")
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	dir := filepath.Join(t.TempDir(), "redis-"+strconv.Itoa(port))
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), opts: opts}
	conf := append([]string{}, opts.Extra...)
	if opts.RequirePass != "" {
		conf = append(conf, "requirepass "+opts.RequirePass)
	}
	if opts.ACLUser != "" {
		conf = append(conf, "user default off", fmt.Sprintf("user %s on >%s ~* &* +@all", opts.ACLUser, opts.ACLPassword))
	}
	if opts.AppendOnly {
		conf = append(conf, "appendonly yes", "appendfsync everysec")
	}
	listen := port
	if opts.TLS {
		s.Certs = GenerateCerts(t, dir)
		auth := "no"
		if opts.TLSClientAuth {
			auth = "yes"
		}
		conf = append(conf, "tls-port "+strconv.Itoa(port), "tls-cert-file "+s.Certs.ServerCert,
			"tls-key-file "+s.Certs.ServerKey, "tls-ca-cert-file "+s.Certs.CA, "tls-auth-clients "+auth)
		listen = 0
	}
	s.conf = conf
	s.proc = start(t, "redis-server", dir, listen, conf)
	waitPing(t, s.Options(), s.proc)
	return s
}

// Restart stops the server if it still runs (SIGKILL), starts it again on
// its port with its configuration and directory, and waits until it
// answers PING. What it held survives only with AppendOnly.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.proc.Kill()
	_ = s.proc.cmd.Wait() // the port is free once the process is gone
	s.proc = start(t, "redis-server", s.proc.dir, s.proc.port, s.conf)
	waitPing(t, s.Options(), s.proc)
}

// Options returns go-redis options that reach the server with its
// credentials and TLS.
func (s *Server) Options() *goredis.Options {
	o := &goredis.Options{Addr: s.Addr, DisableIdentity: true}
	if s.opts.ACLUser != "" {
		o.Username, o.Password = s.opts.ACLUser, s.opts.ACLPassword
	} else {
		o.Password = s.opts.RequirePass
	}
	if s.Certs != nil {
		tc, err := s.Certs.ClientTLS(s.opts.TLSClientAuth)
		if err != nil {
			panic(err)
		}
		o.TLSConfig = tc
	}
	return o
}

// URL is the server's redis:// (or rediss://) URL with its credentials.
func (s *Server) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr, Path: "/0"}
	if s.Certs != nil {
		u.Scheme = "rediss"
	}
	switch {
	case s.opts.ACLUser != "":
		u.User = url.UserPassword(s.opts.ACLUser, s.opts.ACLPassword)
	case s.opts.RequirePass != "":
		u.User = url.UserPassword("", s.opts.RequirePass)
	}
	return u.String()
}

// Client returns a go-redis client for the server, closed in t.Cleanup.
func (s *Server) Client(t testing.TB) *goredis.Client {
	c := goredis.NewClient(s.Options())
	t.Cleanup(func() { c.Close() })
	return c
}

// FlushAll empties the server.
func (s *Server) FlushAll(t testing.TB) {
	t.Helper()
	c := goredis.NewClient(s.Options())
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("flushall: %v", err)
	}
}

// Kill stops the server at once.
func (s *Server) Kill() { s.proc.Kill() }

// Freeze stops the server process (SIGSTOP) until Thaw: it answers
// nothing, and reads what clients sent meanwhile when it runs again.
func (s *Server) Freeze(t testing.TB) { s.signal(t, syscall.SIGSTOP) }

// Thaw lets a frozen server run again (SIGCONT).
func (s *Server) Thaw(t testing.TB) { s.signal(t, syscall.SIGCONT) }

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// CPUTime is the CPU time (user + system) the server process used so far,
// read from /proc; 0 where that is not available.
func (s *Server) CPUTime() time.Duration {
	return cpuTime(s.proc.cmd.Process.Pid)
}
