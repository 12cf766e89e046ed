package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
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
	{"NATS_URL", "nats.url"},
	{"HTTP_LISTEN", "http.listen"},
	{"LOG_LEVEL", "log.level"},
}

// Load builds the configuration: it starts from Default, decodes the TOML
// file at path when path is not empty, applies the environment overrides
// read through env (os.LookupEnv in production; nil reads none), normalises
// the "sled" backend alias to "pebble" with a warning, and validates.
//
// Unknown keys in the file are errors naming the key. Durations must be TOML
// strings ("15m"). STATE_REDIS_CLUSTER_NODES is a comma-separated list; an
// override whose value is empty or blank counts as unset; a malformed one
// (STATE_POOL_SIZE=abc) is a problem naming the variable.
//
// Problems with the file's content, the overrides and the values are all
// returned together as one *ValidationError; an unreadable file is returned
// as the underlying error (wrapped, so errors.Is(err, fs.ErrNotExist) works).
// On error the returned Config is what was assembled so far, returned only
// so a caller can show its Warnings; it must not be used to run.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	var p problems
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if fatal := decodeFile(path, data, &cfg, &p); fatal {
			return cfg, p.err()
		}
	}
	backendFrom := "state.backend"
	if path != "" {
		backendFrom += " in " + path
	}
	if env != nil && applyEnv(&cfg, env, &p) {
		backendFrom = "STATE_BACKEND"
	}
	normaliseBackend(&cfg, backendFrom)
	cfg.addWarnings()
	if err := cfg.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			p = append(p, ve.Problems...)
		}
	}
	return cfg, p.err()
}

// decodeFile decodes data into cfg. Unknown keys are added to p and decoding
// goes on; syntax and type errors are added to p and reported as fatal.
func decodeFile(path string, data []byte, cfg *Config, p *problems) (fatal bool) {
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		addDecodeError(p, path, err)
		return true
	}
	checkDurationTypes(p, reflect.TypeFor[Config](), raw, "")
	if len(*p) > 0 {
		return true
	}
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(cfg)
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		for _, e := range strict.Errors {
			key := dottedKey(e.Key())
			line, col := e.Position()
			msg := fmt.Sprintf("unknown key (%s:%d:%d)", path, line, col)
			if s := suggestKey(key); s != "" {
				msg += "; did you mean " + s + "?"
			}
			p.add(key, "%s", msg)
		}
		return false
	}
	if err != nil {
		addDecodeError(p, path, err)
		return true
	}
	return false
}

func addDecodeError(p *problems, path string, err error) {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		*p = append(*p, fmt.Sprintf("%s: %v", path, err))
		return
	}
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	where := fmt.Sprintf("%s:%d:%d", path, line, col)
	if key := dottedKey(de.Key()); key != "" {
		p.add(key, "%s (%s)", msg, where)
		return
	}
	p.add(where, "%s", msg)
}

var durationType = reflect.TypeFor[Duration]()

// checkDurationTypes reports Duration keys whose TOML value is not a string:
// the decoder would hand "900" to Duration.UnmarshalText without the key or,
// for 0, silently accept it.
func checkDurationTypes(p *problems, t reflect.Type, m map[string]any, prefix string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		v, ok := m[name]
		if name == "" || !ok {
			continue
		}
		switch {
		case f.Type == durationType:
			if _, isString := v.(string); !isString {
				p.add(prefix+name, "must be a duration string such as \"100ms\", \"15m\" or \"24h\", got the TOML %s %v", tomlTypeName(v), v)
			}
		case f.Type.Kind() == reflect.Struct:
			if sub, ok := v.(map[string]any); ok {
				checkDurationTypes(p, f.Type, sub, prefix+name+".")
			}
		}
	}
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	default:
		return "date/time"
	}
}

func dottedKey(k toml.Key) string {
	parts := make([]string, len(k))
	for i, s := range k {
		parts[i] = tomlKey(s)
	}
	return strings.Join(parts, ".")
}

// knownKeys lists every dotted key of the document, tables included.
func knownKeys(t reflect.Type, prefix string, out []string) []string {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		out = append(out, prefix+name)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = knownKeys(f.Type, prefix+name+".", out)
		}
	}
	return out
}

// suggestKey proposes a known key for a misspelt or misplaced one.
func suggestKey(key string) string {
	known := knownKeys(reflect.TypeFor[Config](), "", nil)
	parent, leaf := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		parent, leaf = key[:i+1], key[i+1:]
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestDist := "", 3
	for _, k := range known {
		kp, kl := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			kp, kl = k[:i+1], k[i+1:]
		}
		if kp != parent {
			continue
		}
		if d := editDistance(norm(leaf), norm(kl)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return best
	}
	for _, k := range known {
		if strings.HasSuffix(k, "."+leaf) {
			return k
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// applyEnv applies EnvOverrides and reports whether STATE_BACKEND was one of
// them. Blank values count as unset.
func applyEnv(cfg *Config, env func(string) (string, bool), p *problems) (backendSet bool) {
	for _, o := range EnvOverrides {
		raw, ok := env(o.Var)
		v := strings.TrimSpace(raw)
		if !ok || v == "" {
			continue
		}
		switch o.Var {
		case "STATE_BACKEND":
			cfg.State.Backend = Backend(v)
			backendSet = true
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
				p.add(o.Var, "%q is not an integer (it overrides %s)", v, o.Key)
				continue
			}
			cfg.State.PoolSize = n
		case "NATS_URL":
			cfg.NATS.URL = v
		case "HTTP_LISTEN":
			cfg.HTTP.Listen = v
		case "LOG_LEVEL":
			cfg.Log.Level = v
		}
	}
	return backendSet
}

// normaliseBackend rewrites the old "sled" backend to "pebble" and records
// why in cfg.Warnings.
func normaliseBackend(cfg *Config, from string) {
	if cfg.State.Backend != BackendSledAlias {
		return
	}
	cfg.State.Backend = BackendPebble
	cfg.Warnings = append(cfg.Warnings, fmt.Sprintf(
		"%s: %q is the old system's name for the embedded store; using %q. Pebble cannot read sled files: give state.path a new directory and import exported data instead of reusing a sled one",
		from, BackendSledAlias, BackendPebble))
}

// addWarnings records settings that are valid but weaken a promise.
func (c *Config) addWarnings() {
	switch c.State.Backend {
	case BackendPebble:
		if !c.State.Pebble.Sync {
			c.Warnings = append(c.Warnings, "state.pebble.sync is false: batches are acked before they reach the disk, so a crash or power loss can lose acknowledged events")
		}
	case BackendRedis, BackendRedisCluster:
		if c.State.Redis.TLSInsecureSkipVerify {
			c.Warnings = append(c.Warnings, "state.redis.tls_insecure_skip_verify is true: the Redis server's certificate is not verified")
		}
	}
}
