package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// ValidationError is the error of Validate and Load: every problem found in
// the configuration, each one line naming the TOML key (such as
// consumer.batch_size) or environment variable and what is wrong with it.
type ValidationError struct {
	// Problems holds one human-readable line per problem, in document order.
	Problems []string
}

// Error returns the problems joined one per line.
func (e *ValidationError) Error() string {
	return strings.Join(e.Problems, "\n")
}

// problem is one "field: msg" line of a ValidationError. Field is the
// dotted TOML key (with [i] for an array element), an environment variable
// with the key it overrides, or a file position when no key applies.
type problem struct {
	field, msg string
}

// problems accumulates problems in the order they are found.
type problems []problem

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, problem{field: field, msg: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(*p) == 0 {
		return nil
	}
	lines := make([]string, len(*p))
	for i, pr := range *p {
		lines[i] = pr.field + ": " + pr.msg
	}
	return &ValidationError{Problems: lines}
}

func (p *problems) intRange(field string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(field, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (p *problems) durRange(field string, v Duration, lo, hi time.Duration) {
	if v.Duration < lo || v.Duration > hi {
		p.add(field, "must be between %s and %s, got %s", shortDuration(lo), shortDuration(hi), v)
	}
}

// Validate checks every setting and returns a *ValidationError listing all
// problems at once (not only the first), or nil. It dials nothing, and the
// only files it opens are those [nats] names (credentials, nkey seed, TLS),
// to check they are readable and of the right kind; no problem quotes their
// contents.
func (c Config) Validate() error {
	var p problems
	c.validate(&p)
	return p.err()
}

// ValidateWorker is Validate with the rules for running the worker on the
// configuration: incidentctl reads the same files but may take the NATS
// URL from a flag, where the worker has nats.url or its embedded server.
func (c Config) ValidateWorker() error {
	var p problems
	c.validate(&p)
	c.validateWorker(&p)
	return p.err()
}

// validateWorker: the embedded server checks no credentials, so a worker
// given some without nats.url would take them silently and let an operator
// believe its NATS is protected.
func (c Config) validateWorker(p *problems) {
	if !c.Embedded() {
		return
	}
	n := c.NATS
	for _, f := range []struct{ key, v string }{
		{"user", n.User}, {"password", n.Password}, {"token", n.Token}, {"credentials_file", n.CredentialsFile}, {"nkey_seed_file", n.NkeySeedFile},
	} {
		if f.v != "" {
			p.add("nats."+f.key, "is set but nats.url is empty: the embedded server checks no credentials (it accepts any client that reaches nats.embedded_listen); set nats.url to the server that checks them")
		}
	}
}

func (c Config) validate(p *problems) {
	c.validateState(p)
	c.validateNATS(p)
	c.validateConsumer(p)
	c.validateDedupe(p)
	c.validateHTTP(p)
	c.validateMetrics(p)
	c.validateLog(p)
}

func (c Config) validateState(p *problems) {
	s := c.State
	switch s.Backend {
	case BackendMemory, BackendRedis, BackendRedisCluster:
	case BackendPebble:
		if strings.TrimSpace(s.Path) == "" {
			p.add("state.path", "required for the pebble backend (a data directory such as \"./data/pebble\")")
		}
	case BackendSledAlias:
		p.add("state.backend", `"sled" is the old system's name for the embedded store; set "pebble" (Load rewrites it, Validate does not)`)
	case "":
		p.add("state.backend", "required: one of %s", backendList())
	default:
		p.add("state.backend", "unknown backend %q: one of %s", s.Backend, backendList())
	}

	if s.RedisURL == "" {
		if s.Backend == BackendRedis {
			p.add("state.redis_url", "required for the redis backend (redis://, rediss:// or redis+sentinel:// URL)")
		}
	} else if u, err := redisurl.Parse(s.RedisURL); err != nil {
		addURLProblem(p, "state.redis_url", err)
		// The URL's other problem (a database number, a port) does not
		// hide tls_* files that a plain scheme would ignore: every problem
		// is listed at once.
		if s.Backend == BackendRedis && plainScheme(s.RedisURL) {
			checkTLSFiles(p, "state.redis_url", s.Redis, "a rediss:// or rediss+sentinel:// URL")
		}
	} else if s.Backend == BackendRedis && !u.TLS {
		checkTLSFiles(p, "state.redis_url", s.Redis, "a rediss:// or rediss+sentinel:// URL")
	}

	if len(s.RedisClusterNodes) == 0 && s.Backend == BackendRedisCluster {
		p.add("state.redis_cluster_nodes", "required for the redis_cluster backend: at least 1 node (\"redis://host:port\", \"rediss://host:port\" or \"host:port\")")
	}
	var tlsNodes, plainNodes int
	nodes := make([]redisurl.URL, 0, len(s.RedisClusterNodes))
	for i, n := range s.RedisClusterNodes {
		u, err := redisurl.ParseClusterNode(n)
		switch {
		case err != nil:
			addURLProblem(p, fmt.Sprintf("state.redis_cluster_nodes[%d]", i), err)
			if scheme, _, _ := strings.Cut(strings.TrimSpace(n), "://"); strings.EqualFold(scheme, "redis") {
				plainNodes++ // a plain node whose port (say) is wrong still rules out the tls_* files
			}
		case u.TLS:
			tlsNodes++
		default:
			plainNodes++
		}
		nodes = append(nodes, u)
	}
	if tlsNodes > 0 && plainNodes > 0 {
		p.add("state.redis_cluster_nodes", "mixes rediss:// (TLS) with plain redis:// or host:port nodes; one cluster uses one transport")
	}
	if reason := redisurl.ClusterCredentialConflict(nodes); reason != "" {
		p.add("state.redis_cluster_nodes", "%s", reason)
	}
	if s.Backend == BackendRedisCluster && tlsNodes == 0 && plainNodes > 0 {
		checkTLSFiles(p, "state.redis_cluster_nodes", s.Redis, "rediss://host:port nodes")
	}

	if c.BackendDefaulted && s.Backend == BackendPebble {
		// A Redis URL or cluster nodes with no backend named: the default
		// would keep the incidents in a local Pebble directory instead of
		// the Redis the operator pointed at.
		if s.RedisURL != "" {
			p.add("state.redis_url", "is set, but state.backend is not, and the default backend (pebble, in %q) does not use it: set state.backend = %q (STATE_BACKEND=%s; in incidentctl, the --*-backend flag, the only way for an import or migrate store named by --from-*/--to-* flags without their config file)", s.Path, BackendRedis, BackendRedis)
		}
		if len(s.RedisClusterNodes) > 0 {
			p.add("state.redis_cluster_nodes", "are set, but state.backend is not, and the default backend (pebble, in %q) does not use them: set state.backend = %q (STATE_BACKEND=%s; in incidentctl, the --*-backend flag, the only way for an import or migrate store named by --from-*/--to-* flags without their config file)", s.Path, BackendRedisCluster, BackendRedisCluster)
		}
		if s.RedisURL == "" && len(s.RedisClusterNodes) == 0 && s.KeyPrefix != defaultKeyPrefix {
			p.add("state.key_prefix", "is set (%q), but state.backend is not, and the default backend (pebble, in %q) has no key prefix: set state.backend = %q or %q with its state.redis_url or state.redis_cluster_nodes", s.KeyPrefix, s.Path, BackendRedis, BackendRedisCluster)
		}
	}

	p.intRange("state.pool_size", s.PoolSize, 1, 10000)

	switch {
	case s.KeyPrefix == "":
		p.add("state.key_prefix", "must not be empty")
	case strings.IndexFunc(s.KeyPrefix, unicode.IsSpace) >= 0:
		p.add("state.key_prefix", "must not contain spaces, got %q", s.KeyPrefix)
	case strings.ContainsAny(s.KeyPrefix, "{}"):
		p.add("state.key_prefix", "must not contain '{' or '}' (reserved for Redis Cluster hash tags), got %q", s.KeyPrefix)
	}

	if s.AppliedRetention.Duration < time.Minute {
		p.add("state.applied_retention", "must be at least 1m, got %s", s.AppliedRetention)
	} else if c.Consumer.MaxDeliver > 0 && c.Consumer.AckWait.Duration > 0 {
		horizon := time.Duration(c.Consumer.MaxDeliver) * c.Consumer.AckWait.Duration
		if s.AppliedRetention.Duration < horizon {
			p.add("state.applied_retention", "must be at least consumer.max_deliver × consumer.ack_wait = %s, the span over which JetStream may redeliver an applied event, got %s", shortDuration(horizon), s.AppliedRetention)
		}
	}

	if r := s.IncidentRetention; r.Duration != 0 {
		p.durRange("state.incident_retention", r, time.Hour, 87600*time.Hour)
		if w := c.Dedupe.Window; r.Duration < w.Duration {
			p.add("state.incident_retention", "must be at least dedupe.window (%s): an incident is not resolved by its quiet period before then, got %s", w, r)
		}
		if c.Dedupe.SweepInterval.Duration == 0 {
			p.add("state.incident_retention", "needs dedupe.sweep_interval > 0: the sweep deletes expired incidents, and sweep_interval = 0 turns it off")
		}
	}

	p.intRange("state.pebble.cache_size_mb", s.Pebble.CacheSizeMB, 8, 65536)
	p.intRange("state.pebble.memtable_size_mb", s.Pebble.MemtableSizeMB, 4, 4096)
	p.intRange("state.pebble.bloom_bits_per_key", s.Pebble.BloomBitsPerKey, 0, 32)
	p.intRange("state.pebble.record_cache_mb", s.Pebble.RecordCacheMB, 0, 65536)

	r := s.Redis
	if (r.TLSCertFile == "") != (r.TLSKeyFile == "") {
		p.add("state.redis.tls_cert_file", "state.redis.tls_cert_file and state.redis.tls_key_file must be set together or not at all")
	}
	p.durRange("state.redis.dial_timeout", r.DialTimeout, time.Millisecond, 10*time.Minute)
	p.durRange("state.redis.read_timeout", r.ReadTimeout, time.Millisecond, 10*time.Minute)
	p.durRange("state.redis.write_timeout", r.WriteTimeout, time.Millisecond, 10*time.Minute)
	p.intRange("state.redis.wait_replicas", r.WaitReplicas, 0, 16)
	p.durRange("state.redis.wait_timeout", r.WaitTimeout, time.Millisecond, time.Minute)
}

func backendList() string {
	names := make([]string, len(Backends))
	for i, b := range Backends {
		names[i] = string(b)
	}
	return strings.Join(names, ", ")
}

// addURLProblem adds a redisurl error as a problem of field: its reason,
// and the string with its passwords masked.
func addURLProblem(p *problems, field string, err error) {
	var ue *redisurl.Error
	if errors.As(err, &ue) {
		p.add(field, "%s, got %q", ue.Reason, ue.URL)
		return
	}
	p.add(field, "%v", err)
}

// plainScheme reports whether raw starts with a scheme without TLS
// (redis:// or redis+sentinel://, in any case), so that the tls_* files
// can be checked against a URL whose other parts are invalid.
func plainScheme(raw string) bool {
	scheme, _, ok := strings.Cut(strings.TrimSpace(raw), "://")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "redis", "redis+sentinel":
		return true
	}
	return false
}

// checkTLSFiles reports state.redis.tls_* files set for a connection
// without TLS, which would ignore them: the store refuses to open so.
func checkTLSFiles(p *problems, field string, r RedisConfig, want string) {
	var set []string
	for _, f := range []struct{ key, v string }{
		{"tls_ca_file", r.TLSCAFile}, {"tls_cert_file", r.TLSCertFile}, {"tls_key_file", r.TLSKeyFile},
	} {
		if f.v != "" {
			set = append(set, "state.redis."+f.key)
		}
	}
	switch len(set) {
	case 0:
	case 1:
		p.add(field, "is not TLS but %s is set: use %s, or unset it", set[0], want)
	default:
		p.add(field, "is not TLS but %s are set: use %s, or unset them", strings.Join(set, " and "), want)
	}
}

func checkPort(p *problems, field, port string, lo int) {
	n, err := strconv.Atoi(port)
	if err != nil || n < lo || n > 65535 {
		p.add(field, "port must be a number between %d and 65535, got %q", lo, port)
	}
}

// checkListen checks a host:port listen address (port 0..65535).
func checkListen(p *problems, field, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(field, "must be host:port (e.g. \":8080\" or \"127.0.0.1:8080\"), got %q", addr)
		return false
	}
	before := len(*p)
	checkPort(p, field, port, 0)
	return len(*p) == before
}

func (c Config) validateNATS(p *problems) {
	n := c.NATS
	if n.URL != "" {
		for i, raw := range strings.Split(n.URL, ",") {
			u := strings.TrimSpace(raw)
			shown := redactNATSURL(u)
			if u == "" {
				p.add("nats.url", "entry %d of the comma-separated list is empty", i+1)
				continue
			}
			if scheme, _, ok := strings.Cut(u, "://"); ok {
				switch strings.ToLower(scheme) {
				case "nats", "tls", "ws", "wss":
				default:
					p.add("nats.url", "unsupported scheme %q in %q: want nats://, tls://, ws:// or wss://", scheme, shown)
					continue
				}
			} else {
				u = "nats://" + u
			}
			parsed, err := url.Parse(u)
			if err != nil || parsed.Hostname() == "" {
				p.add("nats.url", "not a valid server URL: %q", shown)
				continue
			}
			if parsed.User != nil && (n.User != "" || n.Token != "" || n.CredentialsFile != "" || n.NkeySeedFile != "") {
				p.add("nats.url", "%q carries credentials and nats.user, nats.token, nats.credentials_file or nats.nkey_seed_file is set too: choose one authentication method", shown)
			}
		}
	}
	if n.Password != "" && n.User == "" {
		p.add("nats.password", "set without nats.user")
	}
	if n.Token != "" && n.User != "" {
		p.add("nats.token", "set together with nats.user: choose token or user/password authentication")
	}
	if n.CredentialsFile != "" && (n.User != "" || n.Token != "") {
		p.add("nats.credentials_file", "set together with nats.user or nats.token: choose one authentication method")
	}
	if n.NkeySeedFile != "" && (n.User != "" || n.Token != "" || n.CredentialsFile != "") {
		p.add("nats.nkey_seed_file", "set together with nats.user, nats.token or nats.credentials_file: choose one authentication method")
	}
	checkCredentialsFile(p, n.CredentialsFile)
	checkSeedFile(p, n.NkeySeedFile)
	if (n.TLSCertFile == "") != (n.TLSKeyFile == "") {
		p.add("nats.tls_cert_file", "nats.tls_cert_file and nats.tls_key_file must be set together or not at all")
	}
	checkPEMFile(p, "nats.tls_ca_file", n.TLSCAFile, "CERTIFICATE")
	checkPEMFile(p, "nats.tls_cert_file", n.TLSCertFile, "CERTIFICATE")
	checkPEMFile(p, "nats.tls_key_file", n.TLSKeyFile, "PRIVATE KEY")
	if c.Embedded() {
		for _, f := range []struct{ key, v string }{
			{"tls_ca_file", n.TLSCAFile}, {"tls_cert_file", n.TLSCertFile}, {"tls_key_file", n.TLSKeyFile}, {"tls_server_name", n.TLSServerName},
		} {
			if f.v != "" {
				p.add("nats."+f.key, "is set but nats.url is empty: the embedded server has no TLS")
			}
		}
	}
	p.durRange("nats.ping_interval", n.PingInterval, time.Second, 10*time.Minute)
	p.intRange("nats.max_pings_outstanding", n.MaxPingsOutstanding, 1, 100)
	checkListen(p, "nats.embedded_listen", n.EmbeddedListen)
	if c.Embedded() && strings.TrimSpace(n.EmbeddedStoreDir) == "" {
		p.add("nats.embedded_store_dir", "required when nats.url is empty (the embedded server keeps its JetStream data there)")
	}
	if s := n.EmbeddedSyncInterval; !s.Always && (s.Every < time.Second || s.Every > time.Hour) {
		p.add("nats.embedded_sync_interval", "%s is out of range: a duration from 1s to 1h, or \"always\"", s)
	}
}

func (c Config) validateConsumer(p *problems) {
	k := c.Consumer
	checkName(p, "consumer.stream", k.Stream)
	checkName(p, "consumer.durable", k.Durable)
	checkName(p, "consumer.dlq_stream", k.DLQStream)
	if k.DLQStream != "" && k.DLQStream == k.Stream {
		p.add("consumer.dlq_stream", "must differ from consumer.stream (%q)", k.Stream)
	}
	if k.DLQStream != "" && k.DLQStream == k.MaxDeliveriesStream() {
		p.add("consumer.dlq_stream", "must differ from %q, the stream of max-deliveries advisories", k.DLQStream)
	}
	if n := len(k.MaxDeliveriesStream()); n > 255 && len(k.Stream) <= 255 {
		p.add("consumer.stream", "must be at most %d characters (its max-deliveries stream adds %q), got %d",
			255-(n-len(k.Stream)), "_MAX_DELIVERIES", len(k.Stream))
	}

	if len(k.Subjects) == 0 {
		p.add("consumer.subjects", "must list at least one subject")
	}
	for i, s := range k.Subjects {
		checkSubject(p, fmt.Sprintf("consumer.subjects[%d]", i), s, true)
	}
	if checkSubject(p, "consumer.dlq_subject_prefix", k.DLQSubjectPrefix, false) {
		dlq := k.DLQSubjectPrefix + ".>"
		for i, s := range k.Subjects {
			if subjectsOverlap(s, dlq) {
				p.add("consumer.dlq_subject_prefix", "%q overlaps consumer.subjects[%d] %q: dead letters would land in the incident stream", k.DLQSubjectPrefix, i, s)
			}
		}
	}

	p.intRange("consumer.batch_size", k.BatchSize, 1, 10000)
	p.durRange("consumer.batch_wait", k.BatchWait, time.Millisecond, time.Minute)
	p.durRange("consumer.ack_wait", k.AckWait, time.Second, time.Hour)
	if k.AckWait.Duration <= k.BatchWait.Duration {
		p.add("consumer.ack_wait", "must be greater than consumer.batch_wait (%s), got %s", k.BatchWait, k.AckWait)
	}
	p.intRange("consumer.max_deliver", k.MaxDeliver, 1, 1000)
	switch {
	case k.MaxAckPending < 1:
		// Its own bound first: an invalid batch_size must not hide it.
		p.add("consumer.max_ack_pending", "must be at least 1 (and at least consumer.batch_size), got %d", k.MaxAckPending)
	case k.MaxAckPending < k.BatchSize:
		p.add("consumer.max_ack_pending", "must be at least consumer.batch_size (%d), got %d", k.BatchSize, k.MaxAckPending)
	case k.MaxAckPending > 1000000:
		p.add("consumer.max_ack_pending", "must be at most 1000000, got %d", k.MaxAckPending)
	}
	if k.MaxAge.Duration < 0 {
		p.add("consumer.max_age", "must be 0 (unlimited) or positive, got %s", k.MaxAge)
	}
	p.durRange("consumer.duplicate_window", k.DuplicateWindow, time.Second, 24*time.Hour)
	if k.MaxAge.Duration > 0 && k.DuplicateWindow.Duration > k.MaxAge.Duration {
		p.add("consumer.duplicate_window", "must not exceed consumer.max_age (%s), got %s", k.MaxAge, k.DuplicateWindow)
	}
	p.intRange("consumer.replicas", k.Replicas, 1, 5)
	if k.Replicas > 1 && c.Embedded() {
		p.add("consumer.replicas", "must be 1 with the embedded NATS server (nats.url is empty), got %d", k.Replicas)
	}
	p.intRange("consumer.max_event_bytes", k.MaxEventBytes, 256, 8388608)
	if d := k.MaxClockSkew.Duration; d != 0 && (d < time.Second || d > 8760*time.Hour) {
		p.add("consumer.max_clock_skew", "must be 0 (no bound) or between 1s and 8760h, got %s", k.MaxClockSkew)
	}
	p.intRange("consumer.orphan_retries", k.OrphanRetries, 0, 100)
	p.durRange("consumer.orphan_retry_delay", k.OrphanRetryDelay, 10*time.Millisecond, time.Minute)
	p.durRange("consumer.lag_poll_interval", k.LagPollInterval, 100*time.Millisecond, 10*time.Minute)
	p.durRange("consumer.retry_initial", k.RetryInitial, time.Millisecond, time.Minute)
	if k.RetryMax.Duration < time.Millisecond {
		// Its own bound first: an invalid retry_initial must not hide it.
		p.add("consumer.retry_max", "must be at least 1ms (and at least consumer.retry_initial), got %s", k.RetryMax)
	} else if k.RetryMax.Duration < k.RetryInitial.Duration {
		p.add("consumer.retry_max", "must be at least consumer.retry_initial (%s), got %s", k.RetryInitial, k.RetryMax)
	} else if k.RetryMax.Duration > 10*time.Minute {
		p.add("consumer.retry_max", "must be at most 10m, got %s", k.RetryMax)
	}
}

// checkName checks a JetStream stream or consumer name.
func checkName(p *problems, field, s string) {
	switch {
	case s == "":
		p.add(field, "must not be empty")
	case len(s) > 255:
		p.add(field, "must be at most 255 characters, got %d", len(s))
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0,
		strings.ContainsAny(s, ".*>/\\"):
		p.add(field, "must not contain spaces or any of . * > / \\, got %q", s)
	}
}

// checkSubject checks a NATS subject (a pattern when wildcards is true) and
// reports whether it is valid.
func checkSubject(p *problems, field, s string, wildcards bool) bool {
	if s == "" {
		p.add(field, "must not be empty")
		return false
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		p.add(field, "must not contain spaces, got %q", s)
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			p.add(field, "has an empty token (leading, trailing or double '.'), got %q", s)
			return false
		case (t == "*" || t == ">") && !wildcards:
			p.add(field, "must not contain wildcards, got %q", s)
			return false
		case t == ">" && i != len(tokens)-1:
			p.add(field, "'>' must be the last token, got %q", s)
			return false
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			p.add(field, "wildcards must be whole tokens, got %q", s)
			return false
		}
	}
	return true
}

// subjectsOverlap reports whether some subject matches both patterns.
func subjectsOverlap(a, b string) bool {
	ta, tb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(ta) || i == len(tb) {
			return len(ta) == len(tb)
		}
		x, y := ta[i], tb[i]
		if x == ">" || y == ">" {
			return true
		}
		if x != y && x != "*" && y != "*" {
			return false
		}
	}
}

// Fingerprint field names accepted in dedupe.fields, besides labels.<key>.
var fingerprintFields = []string{"source", "type", "title", "description", "resources"}

// Why some tempting names are refused as fingerprint fields.
var refusedFields = map[string]string{
	"id":                "event ids are unique per event, so every event would open its own incident (send dedup_key for an explicit identity)",
	"external_id":       "event ids are unique per event, so every event would open its own incident (send dedup_key for an explicit identity)",
	"dedup_key":         "an event's dedup_key always wins over the field fingerprint; it is not a field to list",
	"alert_type":        `it is the old wire name of "type"; list "type"`,
	"affected_services": `it is the old wire name of "resources"; list "resources"`,
	"labels":            `name one label: "labels.<key>"`,
}

const neverIdentity = "is never part of an incident's identity: severity, state, timestamps and measured values change while the incident stays the same (a P2 escalating to P0 is one incident, not two)"

var volatileFields = []string{
	"severity", "peak_severity", "state", "status", "time", "timestamp", "occurred_at",
	"first_seen", "last_seen", "value", "unit", "occurrence_count", "action",
}

func (c Config) validateDedupe(p *problems) {
	d := c.Dedupe
	p.durRange("dedupe.window", d.Window, time.Second, 720*time.Hour)
	if v := d.SweepInterval.Duration; v != 0 && (v < time.Second || v > time.Hour) {
		p.add("dedupe.sweep_interval", "must be 0s (off) or between 1s and 1h, got %s", d.SweepInterval)
	}
	checkFields(p, "dedupe.fields", d.Fields)
	sources := make([]string, 0, len(d.SourceFields))
	for s := range d.SourceFields {
		sources = append(sources, s)
	}
	slices.Sort(sources)
	for _, s := range sources {
		field := "dedupe.source_fields." + tomlKey(s)
		if strings.TrimSpace(s) == "" {
			p.add(field, "source name must not be empty")
			continue
		}
		checkFields(p, field, d.SourceFields[s])
	}
}

func checkFields(p *problems, path string, fields []string) {
	if len(fields) == 0 {
		p.add(path, "must list at least one field (allowed: %s, labels.<key>)", strings.Join(fingerprintFields, ", "))
		return
	}
	seen := make(map[string]bool, len(fields))
	for i, f := range fields {
		field := fmt.Sprintf("%s[%d]", path, i)
		label, isLabel := strings.CutPrefix(f, "labels.")
		switch {
		case isLabel && label == "":
			p.add(field, "label key must not be empty: \"labels.<key>\"")
			continue
		case isLabel:
		case slices.Contains(fingerprintFields, f):
		case slices.Contains(volatileFields, strings.ToLower(f)):
			p.add(field, "%q %s", f, neverIdentity)
			continue
		case refusedFields[strings.ToLower(f)] != "":
			p.add(field, "%q is not allowed: %s", f, refusedFields[strings.ToLower(f)])
			continue
		default:
			p.add(field, "unknown field %q: allowed are %s and labels.<key>", f, strings.Join(fingerprintFields, ", "))
			continue
		}
		if seen[f] {
			p.add(field, "%q is listed twice", f)
		}
		seen[f] = true
	}
}

// tomlKey quotes a key that is not a TOML bare key.
func tomlKey(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0 {
		return k
	}
	return strconv.Quote(k)
}

func (c Config) validateHTTP(p *problems) {
	if !checkListen(p, "http.listen", c.HTTP.Listen) || !c.Embedded() {
		return
	}
	if h, port, ok := listenClash(c.HTTP.Listen, c.NATS.EmbeddedListen); ok {
		p.add("http.listen", "%q clashes with nats.embedded_listen %q on port %s", c.HTTP.Listen, h, port)
	}
}

// reservedPaths are served by the worker beside the metrics endpoint.
var reservedPaths = []string{"/healthz", "/readyz", "/api/"}

func (c Config) validateMetrics(p *problems) {
	path := c.Metrics.Path
	switch {
	case !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#{}") || path == "/":
		p.add("metrics.path", `must be a URL path such as "/metrics" (no space, query, fragment or wildcard), got %q`, path)
	case c.Metrics.Pprof && (path == strings.TrimSuffix(PprofPath, "/") || strings.HasPrefix(path, PprofPath)):
		p.add("metrics.path", "%q is taken by the profiles of metrics.pprof (%s)", path, PprofPath)
	case c.Metrics.Listen == "":
		for _, r := range reservedPaths {
			if path == strings.TrimSuffix(r, "/") || strings.HasPrefix(path, r) {
				p.add("metrics.path", "%q is taken by the worker's own %s endpoint on http.listen", path, r)
			}
		}
	}
	if c.Metrics.Listen == "" || !checkListen(p, "metrics.listen", c.Metrics.Listen) {
		return
	}
	if _, port, ok := listenClash(c.Metrics.Listen, c.HTTP.Listen); ok {
		p.add("metrics.listen", "%q clashes with http.listen %q on port %s (leave metrics.listen empty to serve /metrics there)", c.Metrics.Listen, c.HTTP.Listen, port)
	}
	if c.Embedded() {
		if h, port, ok := listenClash(c.Metrics.Listen, c.NATS.EmbeddedListen); ok {
			p.add("metrics.listen", "%q clashes with nats.embedded_listen %q on port %s", c.Metrics.Listen, h, port)
		}
	}
}

// listenClash reports whether two listen addresses would bind the same port.
func listenClash(a, b string) (string, string, bool) {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return "", "", false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if ha == hb || wild(ha) || wild(hb) {
		return b, pa, true
	}
	return "", "", false
}

func (c Config) validateLog(p *problems) {
	switch c.Log.Level {
	case LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError:
	default:
		p.add("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case LogFormatAuto, LogFormatJSON, LogFormatConsole:
	default:
		p.add("log.format", "must be one of auto, json, console, got %q", c.Log.Format)
	}
}
