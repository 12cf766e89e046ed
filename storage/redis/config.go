package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultKeyPrefix is the reference's key prefix (llm-im:incident:{id}).
	DefaultKeyPrefix = "llm-im"
	// DefaultAppliedRetention is how long applied-event markers live.
	DefaultAppliedRetention = 24 * time.Hour
)

// Config is how to reach Redis and lay out keys. It maps one to one onto the
// [state] and [state.redis] keys of the configuration file.
type Config struct {
	// URL is state.redis_url: redis://, rediss:// or redis+sentinel://.
	URL string
	// ClusterNodes is state.redis_cluster_nodes: seed nodes of a Redis
	// Cluster ("redis://host:port", "rediss://host:port" or "host:port").
	ClusterNodes []string
	// Cluster selects Redis Cluster (backend = "redis_cluster"). When
	// ClusterNodes is empty, URL is the single seed.
	Cluster bool
	// PoolSize is connections per node; 0 keeps go-redis's default. Every
	// command and pipeline of the store shares them: go-redis's separate
	// pipeline pool is turned off (pipelinePool).
	PoolSize int
	// KeyPrefix prefixes every key; DefaultKeyPrefix when empty. In Cluster
	// mode it becomes the hash tag "{prefix}".
	KeyPrefix string
	// Username and Password override the URL's credentials.
	Username, Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels of
	// a redis+sentinel:// URL; they override its query parameters.
	SentinelUsername, SentinelPassword string
	// TLS settings, for rediss:// URLs and cluster nodes.
	TLSCAFile, TLSCertFile, TLSKeyFile, TLSServerName string
	TLSInsecureSkipVerify                             bool
	// Timeouts; zero keeps go-redis's defaults (5s dial, 3s read/write).
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// AppliedRetention is how long an applied-event marker lives, counted
	// from when the server writes it (by the server's clock);
	// DefaultAppliedRetention when <= 0.
	AppliedRetention time.Duration
	// WaitReplicas, when > 0, makes Apply report success only after that
	// many replicas acknowledged the batch (WAIT, in the same round trip as
	// the script), so a failover to one of them keeps it. A batch the
	// master wrote but too few replicas acknowledged within WaitTimeout
	// (default 1s) is an error: the worker retries it.
	WaitReplicas int
	WaitTimeout  time.Duration

	// asIfVersion, for tests: New checks the version and picks the
	// command variants as if the server had reported this one.
	asIfVersion string
}

// resolve parses the URL or cluster nodes (with redisurl, the grammar
// config.Validate checks them with) and lays the explicit credentials over
// those of the URL.
func (c Config) resolve() (redisurl.URL, error) {
	var t redisurl.URL
	var err error
	switch {
	case c.Cluster && len(c.ClusterNodes) > 0:
		t, err = redisurl.ParseClusterNodes(c.ClusterNodes)
	case c.Cluster && c.URL != "":
		t, err = redisurl.ParseClusterNodes([]string{c.URL})
	case c.Cluster:
		err = errors.New("redis cluster: no seed nodes (set redis_cluster_nodes)")
	case c.URL == "":
		err = errors.New("redis: no URL (set redis_url)")
	default:
		t, err = redisurl.Parse(c.URL)
	}
	if err != nil {
		return redisurl.URL{}, err
	}
	if c.Username != "" {
		t.Username = c.Username
	}
	if c.Password != "" {
		t.Password = c.Password
	}
	if c.SentinelUsername != "" {
		t.SentinelUsername = c.SentinelUsername
	}
	if c.SentinelPassword != "" {
		t.SentinelPassword = c.SentinelPassword
	}
	return t, nil
}

// tlsConfig builds the client TLS configuration, nil when the URL is not TLS.
func (c Config) tlsConfig(on bool) (*tls.Config, error) {
	if !on {
		if c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" {
			return nil, errors.New("redis: tls_* files are set but the URL is not rediss://")
		}
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify, //nolint:gosec // explicit opt-in, warned about by config.Load
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis tls ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis tls ca %s: no PEM certificate", c.TLSCAFile)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return nil, errors.New("redis: tls_cert_file and tls_key_file must be set together")
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// newClient opens the go-redis client for the configuration. It does not
// dial: the first command does.
func newClient(c Config, d *dialLog) (goredis.UniversalClient, redisurl.URL, error) {
	t, err := c.resolve()
	if err != nil {
		return nil, redisurl.URL{}, err
	}
	rdb, err := c.clientFor(t, d)
	if err != nil {
		return nil, redisurl.URL{}, err
	}
	return rdb, t, nil
}

// pipelinePool is the PipelinePoolSize of every client: negative, so that
// pipelines (the readiness probe's PING and ROLE, WAIT behind a batch, the
// barrier, verify) run on the main pool and state.pool_size bounds the
// connections per node. go-redis would otherwise open up to 10 more per
// node for pipelines alone.
const pipelinePool = -1

// clientFor opens the go-redis client for a resolved URL.
//
// The clients keep go-redis's default protocol, RESP3: each connection
// starts with HELLO 3 (with AUTH), and a server before 6.0, which has no
// HELLO, answers with an error on which go-redis falls back to RESP2 and
// AUTH password (AUTH user password with a user name, which such a server
// refuses: New turns that into an error naming the version). CLIENT
// SETINFO (7.2) is never sent (DisableIdentity). A Cluster client logs
// the changes of its slot map (watchTopology). Every client dials with
// dialer, which records its failures in d (nil: not recorded).
func (c Config) clientFor(t redisurl.URL, d *dialLog) (goredis.UniversalClient, error) {
	tc, err := c.tlsConfig(t.TLS)
	if err != nil {
		return nil, err
	}
	dial := dialer(c.DialTimeout, tc, d)
	switch {
	case c.Cluster:
		cc := goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs: t.Addrs, Username: t.Username, Password: t.Password,
			PoolSize: c.PoolSize, PipelinePoolSize: pipelinePool, TLSConfig: tc, Dialer: dial, DisableIdentity: true,
			DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout,
		})
		watchTopology(cc, "{"+c.KeyPrefix+"}")
		return cc, nil
	case t.Sentinel:
		return goredis.NewFailoverClient(&goredis.FailoverOptions{
			MasterName: t.MasterName, SentinelAddrs: t.Addrs,
			SentinelUsername: t.SentinelUsername, SentinelPassword: t.SentinelPassword,
			Username: t.Username, Password: t.Password, DB: t.DB,
			PoolSize: c.PoolSize, PipelinePoolSize: pipelinePool, TLSConfig: tc, Dialer: dial, DisableIdentity: true,
			DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout,
		}), nil
	default:
		return goredis.NewClient(&goredis.Options{
			Addr: t.Addrs[0], Username: t.Username, Password: t.Password, DB: t.DB,
			PoolSize: c.PoolSize, PipelinePoolSize: pipelinePool, TLSConfig: tc, Dialer: dial, DisableIdentity: true,
			DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout,
		}), nil
	}
}
