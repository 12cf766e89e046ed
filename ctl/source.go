package ctl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/backend"
	"github.com/llm-im/incidentd/storage/pebble"
)

// DefaultAPIURL is where get, list, count, export and verify find a worker
// when no store is named.
const DefaultAPIURL = "http://127.0.0.1:8080"

// storeFlags name a store: a config file's [state] table, overridden by
// the individual flags. prefix is "state" (--state-backend), "from" or "to".
type storeFlags struct {
	prefix       string
	config       string
	backend      string
	path         string
	redisURL     string
	clusterNodes []string
	keyPrefix    string
	// env looks up the STATE_* variables, which fill in what the config
	// file leaves out and the flags override, as for the worker (nil: none).
	// A --from-*/--to-* store takes them only with its config file (see
	// lookup).
	env func(string) (string, bool)
	// locked is what to do when a worker holds the Pebble directory (a
	// default by prefix when empty, see lockedHint).
	locked string
}

func (f *storeFlags) register(fs *pflag.FlagSet, prefix string, withConfig bool) {
	f.prefix = prefix
	if withConfig {
		fs.StringVar(&f.config, prefix+"-config", "", "TOML config `file` whose [state] table, with the STATE_* variables, names the store (as for a worker started with it)")
	}
	fs.StringVar(&f.backend, prefix+"-backend", "", "store backend: memory, pebble, redis or redis_cluster")
	fs.StringVar(&f.path, prefix+"-path", "", "Pebble data `directory`")
	fs.StringVar(&f.redisURL, prefix+"-redis-url", "", "redis://, rediss:// or redis+sentinel:// `URL`")
	fs.StringSliceVar(&f.clusterNodes, prefix+"-redis-cluster-nodes", nil, "Redis Cluster seed `nodes` (comma-separated)")
	fs.StringVar(&f.keyPrefix, prefix+"-key-prefix", "", "Redis key `prefix` (default llm-im)")
}

// given reports whether any flag names a store.
func (f *storeFlags) given() bool {
	return f.config != "" || f.backend != "" || f.path != "" || f.redisURL != "" || len(f.clusterNodes) > 0 || f.keyPrefix != ""
}

// stateConfig assembles the [state] table: defaults, the config file, the
// environment (for --state-*), then the flags, and validates the whole once
// the flags are in, so a flag can fill in what the file and the STATE_*
// variables leave out (STATE_BACKEND=redis with --state-redis-url) and a
// problem with a flag's value names the flag. It returns the
// configuration's warnings for the store (see backendFlag), for open to
// log.
func (f *storeFlags) stateConfig() (config.StateConfig, []string, error) {
	cfg, err := loadConfigOverride(f.config, f.lookup(), f.override)
	if err != nil {
		return cfg.State, nil, err
	}
	return cfg.State, cfg.Warnings, nil
}

// lookup is the environment the store's configuration reads. The STATE_*
// variables describe one store, the worker's: a --state-* store (the
// query commands' single store) always takes them, a source or target of
// import and migrate only when named by a config file (--from-config,
// --to-config: the store a worker started with that file would use). A
// side named by flags alone is what they say: a pod's STATE_REDIS_PASSWORD
// must not replace the password of another Redis a migration writes to.
func (f *storeFlags) lookup() func(string) (string, bool) {
	if f.prefix != "state" && f.config == "" {
		return nil
	}
	return f.env
}

// override applies the flags over the loaded configuration, returning the
// keys they set with the flags' names (config.Override).
func (f *storeFlags) override(cfg *config.Config) map[string]string {
	set := map[string]string{}
	flag := func(name string) string { return "--" + f.prefix + "-" + name }
	st := &cfg.State
	if f.backend != "" {
		st.Backend, cfg.Warnings = backendFlag(f.backend, flag("backend"), st.Backend, cfg.Warnings)
		set["state.backend"] = flag("backend")
	}
	if f.path != "" {
		st.Path, set["state.path"] = f.path, flag("path")
	}
	if f.redisURL != "" {
		st.RedisURL, set["state.redis_url"] = f.redisURL, flag("redis-url")
	}
	if len(f.clusterNodes) > 0 {
		st.RedisClusterNodes, set["state.redis_cluster_nodes"] = f.clusterNodes, flag("redis-cluster-nodes")
	}
	if f.keyPrefix != "" {
		st.KeyPrefix, set["state.key_prefix"] = f.keyPrefix, flag("key-prefix")
	}
	return set
}

// backendFlag applies a --*-backend flag (named flag) over the backend
// loaded, which came with the configuration's warnings. It reads the value
// as config.Load reads state.backend: any case, and the old name "sled" as
// pebble, with Load's warning naming the flag. The warnings of a
// configuration whose backend the flag replaces are dropped: they were
// about that backend.
func backendFlag(value, flag string, loaded config.Backend, warnings []string) (config.Backend, []string) {
	b := config.Backend(strings.ToLower(value))
	var sled []string
	if b == config.BackendSledAlias {
		b, sled = config.BackendPebble, []string{config.SledAliasWarning(flag)}
	}
	if b != loaded {
		warnings = nil
	}
	return b, append(slices.Clone(warnings), sled...)
}

// logWarnings logs the configuration's warnings as incidentd does: one
// "config" line each, at warn.
func logWarnings(log *zap.Logger, warnings []string) {
	for _, w := range warnings {
		log.Warn("config", zap.String("warning", w))
	}
}

// open opens the named store with its collectors on a private registry,
// after logging the warnings of its configuration.
func (f *storeFlags) open(ctx context.Context, log *zap.Logger) (storage.Store, config.StateConfig, error) {
	st, warnings, err := f.stateConfig()
	if err != nil {
		return nil, st, err
	}
	logWarnings(log, warnings)
	if f.prefix == "to" && st.Backend == config.BackendMemory {
		return nil, st, errMemoryTarget
	}
	if st.Backend == config.BackendMemory {
		// A new memory store is empty: every id would be "not found".
		return nil, st, fmt.Errorf("%w: the memory backend lives inside its worker, and a new one is empty: reach that worker with %s", errUsage, f.memoryHint())
	}
	if f.prefix != "to" && st.Backend == config.BackendPebble {
		// Reading a store that is not there would create an empty one
		// and answer "nothing": a mistyped path must be an error.
		if err := pebbleExists(st.Path, f.pathHint()); err != nil {
			return nil, st, err
		}
	}
	s, err := backend.OpenContext(ctx, st, log, prometheus.NewRegistry())
	if errors.Is(err, storage.ErrLocked) {
		return nil, st, fmt.Errorf("%w (a worker is running on %s: %s)", err, st.Path, f.lockedHint())
	}
	if err != nil {
		return nil, st, err
	}
	return s, st, nil
}

// errMemoryTarget refuses writing into a memory store: it would live only
// as long as incidentctl, and vanish with everything written.
var errMemoryTarget = fmt.Errorf("%w: a memory store lives only inside the process that opens it: what import or migrate wrote into one would be gone when incidentctl exits; write to pebble, redis or redis_cluster", errUsage)

// checkTarget refuses a target store that cannot keep what is written into
// it, before any input is read.
func (f *storeFlags) checkTarget() error {
	if !f.given() {
		return nil // copyInto asks for a target
	}
	st, _, err := f.stateConfig()
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if st.Backend == config.BackendMemory {
		return errMemoryTarget
	}
	return nil
}

// errNoStore is a store to read that does not exist.
var errNoStore = errors.New("no store")

// pebbleExists checks that path is a directory with something in it (an
// empty one, or one with only a lock file or lost+found, would become a
// new, empty store).
func pebbleExists(path, hint string) error {
	entries, err := os.ReadDir(path)
	all := len(entries)
	entries = slices.DeleteFunc(entries, pebble.HoldsNothing)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no Pebble store at %s (the directory does not exist; check %s)", errNoStore, path, hint)
	case err != nil:
		return fmt.Errorf("pebble store %s: %w", path, err)
	case len(entries) == 0 && all > 0:
		return fmt.Errorf("%w: no Pebble store at %s (the directory holds only a lock file or lost+found)", errNoStore, path)
	case len(entries) == 0:
		return fmt.Errorf("%w: no Pebble store at %s (the directory is empty)", errNoStore, path)
	}
	return nil
}

// memoryHint says how to read a memory-backed worker instead.
func (f *storeFlags) memoryHint() string {
	if f.prefix == "from" {
		return "--from-api-url"
	}
	return "--api-url"
}

// pathHint names where the path came from: the flag, and the variable for
// the --state-* flags.
func (f *storeFlags) pathHint() string {
	if f.prefix == "state" {
		return "--state-path or STATE_PATH"
	}
	return "--" + f.prefix + "-path"
}

// lockedHint says what to do instead of opening a directory a worker holds.
func (f *storeFlags) lockedHint() string {
	switch {
	case f.locked != "":
		return f.locked
	case f.prefix == "from":
		return "read it through the worker with --from-api-url, or stop it first"
	case f.prefix == "to":
		return "stop it first"
	}
	return "query it with --api-url, or stop it first"
}

// openReader opens the store when one is named, else a client of the
// worker at apiURL (given by the flag urlFlag). close releases it.
func openReader(ctx context.Context, sf *storeFlags, apiURL, urlFlag string, log *zap.Logger) (r api.Reader, store storage.Store, close func(), err error) {
	if sf.given() {
		s, _, err := sf.open(ctx, log)
		if err != nil {
			return nil, nil, nil, err
		}
		return s, s, func() { _ = s.Close() }, nil
	}
	if err := checkHTTPURL(urlFlag, apiURL); err != nil {
		return nil, nil, nil, err
	}
	return newAPIClient(apiURL), nil, func() {}, nil
}
