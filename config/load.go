package config

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// EnvOverride names an environment variable Load reads and the TOML key it
// overrides.
type EnvOverride struct {
	// Var is the environment variable, e.g. "STATE_BACKEND".
	Var string
	// Key is the dotted TOML key it replaces, e.g. "state.backend".
	Key string
}

// EnvOverrides lists the environment variables Load applies over the file, in
// the order it applies them. The first four are the old system's promises.
var EnvOverrides = []EnvOverride{
	{"STATE_BACKEND", "state.backend"},
	{"STATE_PATH", "state.path"},
	{"STATE_REDIS_URL", "state.redis_url"},
	{"STATE_REDIS_CLUSTER_NODES", "state.redis_cluster_nodes"},
	{"STATE_POOL_SIZE", "state.pool_size"},
	{"STATE_REDIS_PASSWORD", "state.redis.password"},
	{"STATE_REDIS_SENTINEL_PASSWORD", "state.redis.sentinel_password"},
	{"NATS_URL", "nats.url"},
	{"NATS_EMBEDDED_LISTEN", "nats.embedded_listen"},
	{"HTTP_LISTEN", "http.listen"},
	{"HTTP_ALLOW_WRITES", "http.allow_writes"},
	{"METRICS_LISTEN", "metrics.listen"},
	{"METRICS_PPROF", "metrics.pprof"},
	{"LOG_LEVEL", "log.level"},
}

// Load builds the configuration: it starts from Default, decodes the TOML
// file at path when path is not empty, applies the environment overrides
// read through env (os.LookupEnv in production; nil reads none), normalises
// the "sled" backend alias to "pebble" with a warning, and validates.
//
// Every problem is reported, not only the first: unknown keys in the file
// (with a suggestion when one is close), values of the wrong type (a string
// for an integer, a number or "banana" for a duration: durations are TOML
// strings such as "15m"), malformed overrides and invalid values. A key
// whose value has the wrong type keeps its default and gets no second
// problem from validation. A problem with a value set by an environment
// variable names the variable and the key, e.g. "STATE_BACKEND
// (state.backend): ...". STATE_REDIS_CLUSTER_NODES is a comma-separated
// list; an override whose value is empty or blank counts as unset.
//
// The problems are returned together as one *ValidationError; only a file
// that is not TOML at all (a syntax error) stops decoding early. An
// unreadable file is returned as the underlying error (wrapped, so
// errors.Is(err, fs.ErrNotExist) works). On error the returned Config is
// what was assembled so far, returned only so a caller can show its
// Warnings; it must not be used to run.
//
// Load is the worker's: it validates with ValidateWorker.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	return load(path, env, nil, true)
}

// Override is a caller's own settings, which win over the file and the
// environment (incidentctl's --state-* flags). LoadOverride applies it after
// the environment and the backend alias, before the warnings and the
// validation.
// It returns the keys it set, each mapped to the name problems give it
// (such as "--state-redis-url"); setting state.backend names the backend.
type Override func(*Config) map[string]string

// LoadOverride is Load with override applied over the file and the
// environment before validation, so that what the override sets can fill in
// what they leave out (STATE_BACKEND=redis with the URL from a flag) or
// replace an invalid value of theirs.
// It validates with Validate (incidentctl's: see ValidateWorker).
func LoadOverride(path string, env func(string) (string, bool), override Override) (Config, error) {
	return load(path, env, override, false)
}

func load(path string, env func(string) (string, bool), override Override, worker bool) (Config, error) {
	cfg := Default()
	cfg.BackendDefaulted = true // until the file, STATE_BACKEND or override gives it
	var p problems
	bad := map[string]bool{} // keys whose value could not be decoded
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if !decodeFile(path, data, &cfg, &p, bad) {
			return cfg, p.err()
		}
	}
	var fromEnv map[string]string
	if env != nil {
		fromEnv = applyEnv(&cfg, env, &p, bad)
	}
	backendFrom := "state.backend"
	if path != "" {
		backendFrom += " in " + path
	}
	if v, ok := fromEnv["state.backend"]; ok {
		backendFrom = v
	}
	normaliseBackend(&cfg, backendFrom)
	switch {
	case fromEnv["nats.url"] != "":
		cfg.NATS.URLFrom = fromEnv["nats.url"]
	case path != "" && cfg.NATS.URL != "":
		cfg.NATS.URLFrom = "nats.url in " + path
	}
	if override != nil {
		if fromEnv == nil {
			fromEnv = map[string]string{}
		}
		for key, name := range override(&cfg) {
			fromEnv[key] = name
			delete(bad, key)
			if key == "state.backend" {
				cfg.BackendDefaulted = false
			}
		}
	}
	// After the override: the warnings are about the configuration in
	// force, not a URL or backend a flag replaced.
	cfg.addWarnings()

	var invalid problems
	cfg.validate(&invalid)
	if worker {
		cfg.validateWorker(&invalid)
	}
	for _, pr := range invalid {
		if key := keyOf(pr.field, bad); key != "" {
			continue // already reported as the wrong type; the value is a default
		}
		if key := keyOf(pr.field, fromEnv); key != "" {
			pr.field = fromEnv[key] + " (" + pr.field + ")"
		}
		p = append(p, pr)
	}
	return cfg, p.err()
}

// keyOf returns the key of keys that field (a dotted key, possibly with an
// [i] suffix) is or lies under, or "".
func keyOf[V any](field string, keys map[string]V) string {
	for k := range keys {
		if field == k || strings.HasPrefix(field, k+"[") || strings.HasPrefix(field, k+".") {
			return k
		}
	}
	return ""
}

// applyEnv applies EnvOverrides and returns the keys it set, each mapped to
// its variable. Blank values count as unset. A malformed value is a problem
// naming the variable and its key, which then counts as bad; a key set here
// is no longer bad, whatever the file held.
func applyEnv(cfg *Config, env func(string) (string, bool), p *problems, bad map[string]bool) map[string]string {
	set := map[string]string{}
	for _, o := range EnvOverrides {
		raw, ok := env(o.Var)
		v := strings.TrimSpace(raw)
		if !ok || v == "" {
			continue
		}
		switch o.Var {
		case "STATE_BACKEND":
			cfg.State.Backend = Backend(v)
		case "STATE_PATH":
			cfg.State.Path = v
		case "STATE_REDIS_URL":
			cfg.State.RedisURL = v
		case "STATE_REDIS_CLUSTER_NODES":
			nodes := []string{}
			for n := range strings.SplitSeq(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					nodes = append(nodes, n)
				}
			}
			cfg.State.RedisClusterNodes = nodes
		case "STATE_POOL_SIZE":
			n, err := strconv.Atoi(v)
			if err != nil {
				p.add(o.Var+" ("+o.Key+")", "want an integer, got %q", v)
				bad[o.Key] = true
				continue
			}
			cfg.State.PoolSize = n
		case "STATE_REDIS_PASSWORD":
			cfg.State.Redis.Password = raw // a password is taken as given, spaces included
		case "STATE_REDIS_SENTINEL_PASSWORD":
			cfg.State.Redis.SentinelPassword = raw
		case "NATS_URL":
			cfg.NATS.URL = v
		case "NATS_EMBEDDED_LISTEN":
			cfg.NATS.EmbeddedListen = v
		case "HTTP_LISTEN":
			cfg.HTTP.Listen = v
		case "HTTP_ALLOW_WRITES", "METRICS_PPROF":
			b, ok := parseBool(v)
			if !ok {
				p.add(o.Var+" ("+o.Key+")", "want true or false, got %q", v)
				bad[o.Key] = true
				continue
			}
			if o.Var == "METRICS_PPROF" {
				cfg.Metrics.Pprof = b
			} else {
				cfg.HTTP.AllowWrites = b
			}
		case "METRICS_LISTEN":
			cfg.Metrics.Listen = v
		case "LOG_LEVEL":
			cfg.Log.Level = v
		}
		if o.Var == "STATE_BACKEND" {
			cfg.BackendDefaulted = false
		}
		set[o.Key] = o.Var
		delete(bad, o.Key)
	}
	return set
}

// parseBool reads a boolean variable: true or false in any case (not 1, 0,
// yes or no, which TOML does not accept either).
func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// normaliseBackend lower-cases a known backend name (as the command-line
// flags take it: "Redis" is redis), rewrites the old "sled" backend to
// "pebble" and records why in cfg.Warnings. An unknown name is left as
// given, so that its problem quotes what the user typed.
func normaliseBackend(cfg *Config, from string) {
	if b := Backend(strings.ToLower(string(cfg.State.Backend))); b == BackendSledAlias || slices.Contains(Backends, b) {
		cfg.State.Backend = b
	}
	if cfg.State.Backend != BackendSledAlias {
		return
	}
	cfg.State.Backend = BackendPebble
	cfg.Warnings = append(cfg.Warnings, SledAliasWarning(from))
}

// SledAliasWarning is the warning for the "sled" backend alias read from
// from (state.backend in FILE, STATE_BACKEND, or a command-line flag): the
// one Load records, for callers that accept the alias elsewhere too.
func SledAliasWarning(from string) string {
	return fmt.Sprintf(
		"%s: %q is the old system's name for the embedded store; using %q. Pebble cannot read sled files: give state.path a new directory and import exported data instead of reusing a sled one",
		from, BackendSledAlias, BackendPebble)
}

// addWarnings records settings that are valid but weaken a promise, or
// that the backend named does not use.
func (c *Config) addWarnings() {
	if !c.BackendDefaulted { // with the default backend they are problems (validateState)
		var unused []string
		if c.State.RedisURL != "" && c.State.Backend != BackendRedis {
			unused = append(unused, "state.redis_url")
		}
		if len(c.State.RedisClusterNodes) > 0 && c.State.Backend != BackendRedisCluster {
			unused = append(unused, "state.redis_cluster_nodes")
		}
		if c.State.KeyPrefix != defaultKeyPrefix && c.State.Backend != BackendRedis && c.State.Backend != BackendRedisCluster {
			unused = append(unused, "state.key_prefix")
		}
		if len(unused) > 0 && slices.Contains(Backends, c.State.Backend) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s set, but state.backend is %q, which does not use it: incidents are stored by %q", strings.Join(unused, " and "), c.State.Backend, c.State.Backend))
		}
	}
	if c.Embedded() && !loopbackListen(c.NATS.EmbeddedListen) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("nats.embedded_listen %q is not a loopback address: the embedded NATS server has no authentication and no TLS, so anyone who reaches it can publish events and read or delete the streams", c.NATS.EmbeddedListen))
	}
	if w := c.unusedEmbedded(); w != "" {
		c.Warnings = append(c.Warnings, w)
	}
	switch c.State.Backend {
	case BackendPebble:
		if !c.State.Pebble.Sync {
			c.Warnings = append(c.Warnings, "state.pebble.sync is false: batches are acked before they reach the disk, so a crash or power loss can lose acknowledged events")
		}
	case BackendRedis, BackendRedisCluster:
		if c.State.Redis.SentinelUsername != "" || c.State.Redis.SentinelPassword != "" {
			if c.State.Backend == BackendRedisCluster || !isSentinelURL(c.State.RedisURL) {
				c.Warnings = append(c.Warnings, "state.redis.sentinel_username or sentinel_password set, but only a redis+sentinel:// state.redis_url uses them: they are ignored")
			}
		}
		if c.State.Backend == BackendRedis && c.State.Redis.WaitReplicas == 0 && isSentinelURL(c.State.RedisURL) {
			c.Warnings = append(c.Warnings, "state.redis_url is a Sentinel URL and state.redis.wait_replicas is 0: batches are acked once the master has them, and a failover can drop the last ones acked (a manual SENTINEL FAILOVER did, in tests); set wait_replicas = 1 to ack only what a replica holds too (the number of replicas, to survive a manual failover)")
		}
		if r := c.State.Redis; r.WaitReplicas > 0 && r.WaitTimeout.Duration >= r.ReadTimeout.Duration {
			c.Warnings = append(c.Warnings, fmt.Sprintf("state.redis.wait_timeout (%s) is not below state.redis.read_timeout (%s): a WAIT for the replicas outlasts the client's read timeout, so a batch too few replicas confirm fails as an i/o timeout (and drops the connection) instead of naming the replicas; keep read_timeout above wait_timeout", r.WaitTimeout, r.ReadTimeout))
		}
		if c.State.Redis.TLSInsecureSkipVerify {
			c.Warnings = append(c.Warnings, "state.redis.tls_insecure_skip_verify is true: the Redis server's certificate is not verified")
		}
	}
}

// unusedEmbedded warns about embedded-server keys changed from their
// defaults while nats.url names the servers: no embedded server starts, so
// they configure nothing (a development file's listen address or store
// directory carried into a production one).
func (c *Config) unusedEmbedded() string {
	if c.Embedded() {
		return ""
	}
	d, n := Default().NATS, c.NATS
	var unused []string
	if n.EmbeddedListen != d.EmbeddedListen {
		unused = append(unused, "nats.embedded_listen")
	}
	if n.EmbeddedStoreDir != d.EmbeddedStoreDir {
		unused = append(unused, "nats.embedded_store_dir")
	}
	if n.EmbeddedSyncInterval != d.EmbeddedSyncInterval {
		unused = append(unused, "nats.embedded_sync_interval")
	}
	if len(unused) == 0 {
		return ""
	}
	what := "they configure"
	if len(unused) == 1 {
		what = "it configures"
	}
	return fmt.Sprintf("%s set, but nats.url is set too: the worker connects to those servers and starts no embedded one, so %s nothing",
		strings.Join(unused, " and "), what)
}

// loopbackListen reports whether a listen address (host:port) binds
// loopback only: an empty host (every interface) or a host that is not a
// loopback IP or "localhost" does not. An address that does not parse is
// Validate's problem, not a warning.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isSentinelURL reports a redis+sentinel:// or rediss+sentinel:// URL.
func isSentinelURL(u string) bool {
	u = strings.ToLower(u)
	return strings.HasPrefix(u, "redis+sentinel://") || strings.HasPrefix(u, "rediss+sentinel://")
}
