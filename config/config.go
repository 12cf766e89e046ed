// Package config is incidentd's configuration: one TOML document decoded into
// the Config struct tree, the product defaults (Default), the environment
// overrides the old "LLM Incident Manager" promised (STATE_BACKEND,
// STATE_PATH, STATE_REDIS_URL, STATE_REDIS_CLUSTER_NODES, ...), and a Validate
// that lists every problem at once, each naming the TOML key and the bound it
// breaks.
//
// The package only describes and checks settings: it opens no files other
// than the config file and the [nats] credential and TLS files Validate
// checks, dials nothing and logs nothing. Load returns the
// notes a caller should log (for example the "sled" alias) in
// Config.Warnings, and Redacted returns a copy that is safe to log.
package config

import "time"

// Backend names a storage backend, the value of state.backend.
type Backend string

// The storage backends accepted in state.backend.
const (
	// BackendMemory keeps incidents in process memory: tests and demos.
	BackendMemory Backend = "memory"
	// BackendPebble is the embedded, single-node, persistent store (the
	// default). It replaces the old system's "sled" backend.
	BackendPebble Backend = "pebble"
	// BackendRedis is a standalone or Sentinel-managed Redis server.
	BackendRedis Backend = "redis"
	// BackendRedisCluster is a Redis Cluster.
	BackendRedisCluster Backend = "redis_cluster"
)

// BackendSledAlias is the old system's name for its embedded store. Load
// accepts it in state.backend and STATE_BACKEND, replaces it with
// BackendPebble and records a warning; Validate rejects it.
const BackendSledAlias Backend = "sled"

// Backends lists the accepted state.backend values, in documentation order.
var Backends = []Backend{BackendMemory, BackendPebble, BackendRedis, BackendRedisCluster}

// Log levels accepted in log.level.
const (
	// LogLevelDebug logs everything, including per-batch detail.
	LogLevelDebug = "debug"
	// LogLevelInfo is the default level.
	LogLevelInfo = "info"
	// LogLevelWarn logs warnings and errors only.
	LogLevelWarn = "warn"
	// LogLevelError logs errors only.
	LogLevelError = "error"
)

// Log formats accepted in log.format.
const (
	// LogFormatAuto asks the caller to pick console on a terminal and JSON
	// otherwise; the package itself makes no such decision.
	LogFormatAuto = "auto"
	// LogFormatJSON is one JSON object per line.
	LogFormatJSON = "json"
	// LogFormatConsole is the human-readable console encoding.
	LogFormatConsole = "console"
)

// Config is the whole product configuration, the root of the TOML document.
// Every field's json tag equals its toml tag, so the JSON form (the start-up
// log line, with Redacted) uses the keys of the TOML document.
type Config struct {
	// State is the [state] table: where incidents are stored.
	State StateConfig `toml:"state" json:"state"`
	// NATS is the [nats] table: the connection or the embedded server.
	NATS NATSConfig `toml:"nats" json:"nats"`
	// Consumer is the [consumer] table: the JetStream stream and pull
	// consumer, batching, dead letters and retry.
	Consumer ConsumerConfig `toml:"consumer" json:"consumer"`
	// Dedupe is the [dedupe] table: incident identity and the quiet period.
	Dedupe DedupeConfig `toml:"dedupe" json:"dedupe"`
	// HTTP is the [http] table: the metrics and health endpoint.
	HTTP HTTPConfig `toml:"http" json:"http"`
	// Metrics is the [metrics] table: where Prometheus scrapes.
	Metrics MetricsConfig `toml:"metrics" json:"metrics"`
	// Log is the [log] table.
	Log LogConfig `toml:"log" json:"log"`

	// Warnings are notes Load collected for the caller to log, such as the
	// "sled" alias being normalised. They are not part of the TOML document
	// nor of its JSON form.
	Warnings []string `toml:"-" json:"-"`

	// BackendDefaulted is set by Load when neither the file nor
	// STATE_BACKEND gave state.backend, so it is the default (pebble). A
	// Redis URL or cluster nodes given then are an invalid configuration,
	// not settings the default backend silently ignores; a caller that sets
	// the backend itself (incidentctl's --*-backend flags) clears it. Not
	// part of the TOML document nor of its JSON form.
	BackendDefaulted bool `toml:"-" json:"-"`
}

// StateConfig is the [state] table, with the old system's keys (backend,
// path, redis_url, redis_cluster_nodes, pool_size) and incidentd's additions.
type StateConfig struct {
	// Backend is state.backend: memory, pebble, redis or redis_cluster.
	Backend Backend `toml:"backend" json:"backend"`
	// Path is state.path, the Pebble data directory; required for pebble.
	Path string `toml:"path" json:"path"`
	// RedisURL is state.redis_url, required for redis: a redis://,
	// rediss:// or redis+sentinel:// URL.
	RedisURL string `toml:"redis_url" json:"redis_url"`
	// RedisClusterNodes is state.redis_cluster_nodes, required (at least
	// one) for redis_cluster: "redis://host:port", "rediss://host:port" or
	// bare "host:port" seed nodes.
	RedisClusterNodes []string `toml:"redis_cluster_nodes" json:"redis_cluster_nodes"`
	// PoolSize is state.pool_size, the connection pool size (1..10000).
	PoolSize int `toml:"pool_size" json:"pool_size"`
	// KeyPrefix is state.key_prefix, the prefix of every Redis key
	// ("llm-im" gives llm-im:incident:{id}).
	KeyPrefix string `toml:"key_prefix" json:"key_prefix"`
	// AppliedRetention is state.applied_retention: how long the markers of
	// applied events are kept so a redelivered event changes nothing.
	AppliedRetention Duration `toml:"applied_retention" json:"applied_retention"`
	// IncidentRetention is state.incident_retention: how long a Resolved
	// or Closed incident is kept after its last event and last change
	// before the sweep deletes it (0, the default, keeps incidents
	// forever; otherwise 1h..87600h; needs dedupe.sweep_interval).
	IncidentRetention Duration `toml:"incident_retention" json:"incident_retention"`
	// Pebble is the [state.pebble] table.
	Pebble PebbleConfig `toml:"pebble" json:"pebble"`
	// Redis is the [state.redis] table, shared by redis and redis_cluster.
	Redis RedisConfig `toml:"redis" json:"redis"`
}

// PebbleConfig is the [state.pebble] table: tuning of the embedded store.
type PebbleConfig struct {
	// CacheSizeMB is state.pebble.cache_size_mb, the block cache (8..65536).
	CacheSizeMB int `toml:"cache_size_mb" json:"cache_size_mb"`
	// MemtableSizeMB is state.pebble.memtable_size_mb (4..4096).
	MemtableSizeMB int `toml:"memtable_size_mb" json:"memtable_size_mb"`
	// BloomBitsPerKey is state.pebble.bloom_bits_per_key (0..32, 0
	// disables bloom filters).
	BloomBitsPerKey int `toml:"bloom_bits_per_key" json:"bloom_bits_per_key"`
	// RecordCacheMB is state.pebble.record_cache_mb (0..65536, 0, the
	// default, disables it): the records written last, kept in memory so
	// that merges into recent incidents do not read Pebble.
	RecordCacheMB int `toml:"record_cache_mb" json:"record_cache_mb"`
	// Sync is state.pebble.sync: fsync every batch commit. Turning it off
	// gives up the "acked only after the write is durable" promise.
	Sync bool `toml:"sync" json:"sync"`
}

// RedisConfig is the [state.redis] table: credentials, TLS and timeouts for
// the redis and redis_cluster backends.
type RedisConfig struct {
	// Username is state.redis.username; it overrides the URL's user.
	Username string `toml:"username" json:"username"`
	// Password is state.redis.password; it overrides the URL's password.
	// Secret: Redacted masks it.
	Password string `toml:"password" json:"password"`
	// SentinelUsername is state.redis.sentinel_username, for
	// redis+sentinel:// URLs.
	SentinelUsername string `toml:"sentinel_username" json:"sentinel_username"`
	// SentinelPassword is state.redis.sentinel_password. Secret.
	SentinelPassword string `toml:"sentinel_password" json:"sentinel_password"`
	// TLSCAFile is state.redis.tls_ca_file, a PEM bundle of trusted CAs.
	TLSCAFile string `toml:"tls_ca_file" json:"tls_ca_file"`
	// TLSCertFile is state.redis.tls_cert_file, the client certificate
	// (set together with TLSKeyFile).
	TLSCertFile string `toml:"tls_cert_file" json:"tls_cert_file"`
	// TLSKeyFile is state.redis.tls_key_file, the client key.
	TLSKeyFile string `toml:"tls_key_file" json:"tls_key_file"`
	// TLSServerName is state.redis.tls_server_name, overriding the name
	// checked in the server certificate.
	TLSServerName string `toml:"tls_server_name" json:"tls_server_name"`
	// TLSInsecureSkipVerify is state.redis.tls_insecure_skip_verify; Load
	// warns when it is on.
	TLSInsecureSkipVerify bool `toml:"tls_insecure_skip_verify" json:"tls_insecure_skip_verify"`
	// DialTimeout is state.redis.dial_timeout.
	DialTimeout Duration `toml:"dial_timeout" json:"dial_timeout"`
	// ReadTimeout is state.redis.read_timeout.
	ReadTimeout Duration `toml:"read_timeout" json:"read_timeout"`
	// WriteTimeout is state.redis.write_timeout.
	WriteTimeout Duration `toml:"write_timeout" json:"write_timeout"`
	// WaitReplicas is state.redis.wait_replicas: when > 0, a batch counts as
	// committed (and its messages are acked) only after that many replicas
	// acknowledged it (Redis WAIT), so a failover cannot lose acked events.
	WaitReplicas int `toml:"wait_replicas" json:"wait_replicas"`
	// WaitTimeout is state.redis.wait_timeout: how long Apply waits for the
	// replicas before reporting the batch as failed (it is then retried).
	WaitTimeout Duration `toml:"wait_timeout" json:"wait_timeout"`
}

// NATSConfig is the [nats] table. An empty URL runs an embedded nats-server
// in-process (see Config.Embedded).
type NATSConfig struct {
	// URL is nats.url: one or more comma-separated nats://, tls://, ws://
	// or wss:// URLs. Empty runs the embedded server.
	URL string `toml:"url" json:"url"`
	// Name is nats.name, the client connection name.
	Name string `toml:"name" json:"name"`
	// CredentialsFile is nats.credentials_file, a .creds file (a user JWT
	// and its nkey seed); Validate reads it to check it holds a user JWT.
	CredentialsFile string `toml:"credentials_file" json:"credentials_file"`
	// NkeySeedFile is nats.nkey_seed_file, a file holding a user nkey seed
	// alone (nkey authentication, no JWT): the seed signs the server's
	// challenge and never leaves the process.
	NkeySeedFile string `toml:"nkey_seed_file" json:"nkey_seed_file"`
	// User is nats.user.
	User string `toml:"user" json:"user"`
	// Password is nats.password. Secret.
	Password string `toml:"password" json:"password"`
	// Token is nats.token. Secret.
	Token string `toml:"token" json:"token"`
	// TLSCAFile is nats.tls_ca_file, a PEM bundle of the CAs trusted to
	// sign the servers' certificates (the system's pool when empty).
	TLSCAFile string `toml:"tls_ca_file" json:"tls_ca_file"`
	// TLSCertFile is nats.tls_cert_file, the client certificate for mutual
	// TLS (set together with TLSKeyFile).
	TLSCertFile string `toml:"tls_cert_file" json:"tls_cert_file"`
	// TLSKeyFile is nats.tls_key_file, the client certificate's key.
	TLSKeyFile string `toml:"tls_key_file" json:"tls_key_file"`
	// TLSServerName is nats.tls_server_name, overriding the name checked in
	// the servers' certificates (the URL's host by default).
	TLSServerName string `toml:"tls_server_name" json:"tls_server_name"`
	// PingInterval is nats.ping_interval (1s..10m): how often the client
	// pings the server; after MaxPingsOutstanding pings without an answer
	// the connection counts as lost and the client reconnects.
	PingInterval Duration `toml:"ping_interval" json:"ping_interval"`
	// MaxPingsOutstanding is nats.max_pings_outstanding (1..100).
	MaxPingsOutstanding int `toml:"max_pings_outstanding" json:"max_pings_outstanding"`
	// EmbeddedListen is nats.embedded_listen, the embedded server's client
	// address (host:port; port 0 picks a free one).
	EmbeddedListen string `toml:"embedded_listen" json:"embedded_listen"`
	// EmbeddedStoreDir is nats.embedded_store_dir, the embedded server's
	// JetStream storage directory.
	EmbeddedStoreDir string `toml:"embedded_store_dir" json:"embedded_store_dir"`
	// EmbeddedSyncInterval is nats.embedded_sync_interval: how often the
	// embedded server flushes its streams to disk (1s..1h), or "always"
	// (after every message). A message JetStream acked but did not flush
	// yet is lost if the machine (not the process) crashes.
	EmbeddedSyncInterval SyncInterval `toml:"embedded_sync_interval" json:"embedded_sync_interval"`

	// URLFrom says where Load took URL from, for messages: "NATS_URL" or
	// "nats.url in FILE"; empty when URL is empty or was set by the
	// caller. Not part of the TOML document nor of its JSON form.
	URLFrom string `toml:"-" json:"-"`
}

// ConsumerConfig is the [consumer] table: the JetStream stream, the shared
// durable pull consumer, batching, dead letters and store retry.
type ConsumerConfig struct {
	// Stream is consumer.stream, the JetStream stream name.
	Stream string `toml:"stream" json:"stream"`
	// Subjects is consumer.subjects, the stream's subjects (wildcards
	// allowed).
	Subjects []string `toml:"subjects" json:"subjects"`
	// Durable is consumer.durable, the durable pull consumer's name, shared
	// by every worker.
	Durable string `toml:"durable" json:"durable"`
	// DLQStream is consumer.dlq_stream, the dead-letter stream name.
	DLQStream string `toml:"dlq_stream" json:"dlq_stream"`
	// DLQSubjectPrefix is consumer.dlq_subject_prefix; dead letters are
	// published below it (prefix + "." + ...).
	DLQSubjectPrefix string `toml:"dlq_subject_prefix" json:"dlq_subject_prefix"`
	// BatchSize is consumer.batch_size, messages per fetch (1..10000).
	BatchSize int `toml:"batch_size" json:"batch_size"`
	// BatchWait is consumer.batch_wait, the longest a fetch waits to fill a
	// batch (1ms..1m).
	BatchWait Duration `toml:"batch_wait" json:"batch_wait"`
	// AckWait is consumer.ack_wait, after which JetStream redelivers an
	// unacked message (1s..1h, more than BatchWait).
	AckWait Duration `toml:"ack_wait" json:"ack_wait"`
	// MaxDeliver is consumer.max_deliver, deliveries before a message is
	// given up (1..1000).
	MaxDeliver int `toml:"max_deliver" json:"max_deliver"`
	// MaxAckPending is consumer.max_ack_pending (BatchSize..1000000).
	MaxAckPending int `toml:"max_ack_pending" json:"max_ack_pending"`
	// MaxAge is consumer.max_age, the stream retention; 0 keeps messages
	// without an age limit.
	MaxAge Duration `toml:"max_age" json:"max_age"`
	// DuplicateWindow is consumer.duplicate_window, the JetStream
	// Nats-Msg-Id de-duplication window (1s..24h, at most MaxAge when
	// MaxAge is set).
	DuplicateWindow Duration `toml:"duplicate_window" json:"duplicate_window"`
	// Replicas is consumer.replicas, stream and consumer replicas (1..5;
	// 1 with the embedded server).
	Replicas int `toml:"replicas" json:"replicas"`
	// MaxEventBytes is consumer.max_event_bytes; larger events are dead
	// lettered (256..8388608).
	MaxEventBytes int `toml:"max_event_bytes" json:"max_event_bytes"`
	// MaxClockSkew is consumer.max_clock_skew: an event whose occurred_at
	// is further than this after the message's JetStream timestamp is
	// dead-lettered as invalid_field (0, the default, disables it; else
	// 1s..8760h).
	MaxClockSkew Duration `toml:"max_clock_skew" json:"max_clock_skew"`
	// OrphanRetries is consumer.orphan_retries: how many times an
	// acknowledge or resolve that finds no incident to act on is
	// redelivered before it counts as an orphan (0..100; at most
	// MaxDeliver-1 of them are used). Another worker may be committing the
	// trigger that preceded it in the stream.
	OrphanRetries int `toml:"orphan_retries" json:"orphan_retries"`
	// OrphanRetryDelay is consumer.orphan_retry_delay, how long such an
	// event waits before its redelivery (10ms..1m).
	OrphanRetryDelay Duration `toml:"orphan_retry_delay" json:"orphan_retry_delay"`
	// ReadAhead is consumer.read_ahead: whether, for ack_wait after another
	// worker of the consumer went silent without stopping, or while one
	// says it is stuck (its commits failing or slow) and for ack_wait
	// after (workers say they are alive on a core NATS subject), an
	// acknowledge or resolve still unsettled at its last deferral makes the
	// worker read the stream above the ack floor itself and commit the
	// trigger it follows (held by the dead or stuck worker) first.
	ReadAhead bool `toml:"read_ahead" json:"read_ahead"`
	// LagPollInterval is consumer.lag_poll_interval, how often consumer lag
	// is sampled for metrics, and how often the worker pings a Redis store
	// for its readiness (100ms..10m).
	LagPollInterval Duration `toml:"lag_poll_interval" json:"lag_poll_interval"`
	// RetryInitial is consumer.retry_initial, the first backoff after a
	// transient store error.
	RetryInitial Duration `toml:"retry_initial" json:"retry_initial"`
	// RetryMax is consumer.retry_max, the backoff ceiling (>= RetryInitial).
	RetryMax Duration `toml:"retry_max" json:"retry_max"`
}

// MaxDeliveriesStream is the name of the stream that keeps the
// max-deliveries advisories of the consumers of Stream:
// "<stream>_MAX_DELIVERIES".
func (k ConsumerConfig) MaxDeliveriesStream() string { return k.Stream + "_MAX_DELIVERIES" }

// DedupeConfig is the [dedupe] table: which event fields make an incident's
// identity, and the quiet period after which an incident resolves.
type DedupeConfig struct {
	// Window is dedupe.window, the quiet period (1s..720h): an open
	// incident with no events for this long resolves.
	Window Duration `toml:"window" json:"window"`
	// Fields is dedupe.fields, the ordered fingerprint fields: source,
	// type, title, description, resources or labels.<key>.
	Fields []string `toml:"fields" json:"fields"`
	// SourceFields is the [dedupe.source_fields] table: per-source field
	// lists that replace Fields for events of that source.
	SourceFields map[string][]string `toml:"source_fields" json:"source_fields"`
	// SweepInterval is dedupe.sweep_interval: how often a caught-up worker
	// resolves open incidents whose quiet period ended with no further
	// event (0 disables; then they resolve at their identity's next event).
	SweepInterval Duration `toml:"sweep_interval" json:"sweep_interval"`
}

// FieldsFor returns the fingerprint fields for events of source: its
// dedupe.source_fields entry when there is one, dedupe.fields otherwise.
func (d DedupeConfig) FieldsFor(source string) []string {
	if f, ok := d.SourceFields[source]; ok {
		return f
	}
	return d.Fields
}

// HTTPConfig is the [http] table: the /metrics, /healthz and /readyz server.
type HTTPConfig struct {
	// Listen is http.listen, a host:port for net.Listen (":8080").
	Listen string `toml:"listen" json:"listen"`
	// AllowWrites is http.allow_writes: serve the API's one write, an
	// operator's state change (POST /api/v1/incidents/{id}/state). Off by
	// default, since the API has no authentication: the endpoint then
	// answers 403.
	AllowWrites bool `toml:"allow_writes" json:"allow_writes"`
}

// MetricsConfig is the [metrics] table: where the Prometheus endpoint is
// served. The metrics themselves are always collected.
type MetricsConfig struct {
	// Path is metrics.path, the endpoint's path ("/metrics").
	Path string `toml:"path" json:"path"`
	// Listen is metrics.listen: empty serves the endpoint on http.listen;
	// a host:port gives it a listener of its own (the API and the health
	// endpoints stay on http.listen), for example to keep scrapes on a
	// port the API's clients cannot reach.
	Listen string `toml:"listen" json:"listen"`
	// Pprof is metrics.pprof: serve the Go runtime's profiles
	// (net/http/pprof: CPU, heap, goroutines, execution trace) under
	// /debug/pprof/ beside the metrics endpoint, on its listener. Off by
	// default: like the API, they have no authentication, and a CPU
	// profile or a trace costs the worker CPU while it runs.
	Pprof bool `toml:"pprof" json:"pprof"`
}

// PprofPath is where metrics.pprof serves the profiles.
const PprofPath = "/debug/pprof/"

// LogConfig is the [log] table.
type LogConfig struct {
	// Level is log.level: debug, info, warn or error.
	Level string `toml:"level" json:"level"`
	// Format is log.format: auto, json or console. For auto the caller
	// chooses console on a terminal and json otherwise.
	Format string `toml:"format" json:"format"`
}

// defaultKeyPrefix is the default state.key_prefix, the reference's.
const defaultKeyPrefix = "llm-im"

// Default returns the product defaults: the pebble backend in ./data/pebble,
// an embedded NATS server, and the consumer, dedupe, HTTP and log settings
// documented in the example files. Every call returns fresh slices and maps.
func Default() Config {
	return Config{
		State: StateConfig{
			Backend:           BackendPebble,
			Path:              "./data/pebble",
			RedisClusterNodes: []string{},
			PoolSize:          100,
			KeyPrefix:         defaultKeyPrefix,
			AppliedRetention:  Duration{24 * time.Hour},
			Pebble: PebbleConfig{
				CacheSizeMB:     256,
				MemtableSizeMB:  64,
				BloomBitsPerKey: 10,
				Sync:            true,
			},
			Redis: RedisConfig{
				DialTimeout:  Duration{5 * time.Second},
				ReadTimeout:  Duration{3 * time.Second},
				WriteTimeout: Duration{3 * time.Second},
				WaitTimeout:  Duration{time.Second},
			},
		},
		NATS: NATSConfig{
			Name:             "incidentd",
			EmbeddedListen:   "127.0.0.1:4222",
			EmbeddedStoreDir: "./data/nats",
			// A frozen or partitioned server is found within about
			// ping_interval × (max_pings_outstanding + 1), 40 s, not
			// nats.go's 6 min (2m × 2 + 2m).
			PingInterval:        Duration{10 * time.Second},
			MaxPingsOutstanding: 3,
			// nats-server's own default
			EmbeddedSyncInterval: SyncInterval{Every: 2 * time.Minute},
		},
		Consumer: ConsumerConfig{
			Stream:           "INCIDENTS",
			Subjects:         []string{"incidents.events.>"},
			Durable:          "incidentd",
			DLQStream:        "INCIDENTS_DLQ",
			DLQSubjectPrefix: "incidents.dlq",
			BatchSize:        512,
			BatchWait:        Duration{100 * time.Millisecond},
			AckWait:          Duration{30 * time.Second},
			MaxDeliver:       5,
			MaxAckPending:    4096,
			MaxAge:           Duration{168 * time.Hour},
			DuplicateWindow:  Duration{2 * time.Minute},
			Replicas:         1,
			MaxEventBytes:    65536,
			MaxClockSkew:     Duration{}, // no bound: the event format has none; examples set 1h
			OrphanRetries:    2,
			OrphanRetryDelay: Duration{time.Second},
			ReadAhead:        true,
			LagPollInterval:  Duration{5 * time.Second},
			RetryInitial:     Duration{100 * time.Millisecond},
			RetryMax:         Duration{10 * time.Second},
		},
		Dedupe: DedupeConfig{
			Window:        Duration{15 * time.Minute},
			Fields:        []string{"source", "type", "title", "resources"},
			SourceFields:  map[string][]string{},
			SweepInterval: Duration{30 * time.Second},
		},
		HTTP:    HTTPConfig{Listen: ":8080"},
		Metrics: MetricsConfig{Path: "/metrics"},
		Log:     LogConfig{Level: LogLevelInfo, Format: LogFormatAuto},
	}
}

// Embedded reports whether incidentd runs its own in-process nats-server,
// which is the case when nats.url is empty.
func (c Config) Embedded() bool {
	return c.NATS.URL == ""
}
