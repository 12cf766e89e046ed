package ctl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestRedisURLWithoutBackendIsNoPebble: a Redis URL (or cluster nodes)
// given with no backend named anywhere is a usage error, not a command that
// reads or fills the default Pebble store under the current directory while
// the operator meant Redis. Naming the backend by flag, STATE_BACKEND or the
// file makes the same URL work.
func TestRedisURLWithoutBackendIsNoPebble(t *testing.T) {
	srv, cwd, export := redisAndOneIncident(t)
	cfg := filepath.Join(t.TempDir(), "nobackend.toml")
	writeFile(t, cfg, "[state]\nredis_url = \""+srv.URL()+"\"\n")

	for _, c := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{"count --state-redis-url", nil, "", []string{"count", "--state-redis-url", srv.URL()}, "--state-redis-url (state.redis_url): is set, but state.backend is not"},
		{"import --to-redis-url", nil, export, []string{"import", "--to-redis-url", srv.URL()}, "--to-redis-url (state.redis_url): is set, but state.backend is not"},
		{"migrate --to-redis-cluster-nodes", nil, "", []string{"migrate", "--from-api-url", "http://127.0.0.1:1", "--to-redis-cluster-nodes", "127.0.0.1:7000"}, "--to-redis-cluster-nodes (state.redis_cluster_nodes): are set, but state.backend is not"},
		{"STATE_REDIS_URL alone", map[string]string{"STATE_REDIS_URL": srv.URL()}, "", []string{"list", "--state-key-prefix", "llm-im"}, "STATE_REDIS_URL (state.redis_url): is set, but state.backend is not"},
		{"config file without a backend", nil, "", []string{"verify", "--config", cfg}, "state.redis_url: is set, but state.backend is not"},
		// --state-key-prefix is a store flag too (it used to leave the
		// command on the API, the prefix unused).
		{"--state-key-prefix alone", nil, "", []string{"count", "--state-key-prefix", "team-a"}, `--state-key-prefix (state.key_prefix): is set ("team-a"), but state.backend is not`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCtl(t, c.env, c.stdin, c.args...)
			mustCode(t, r, ctl.ExitUsage)
			if !strings.Contains(r.err, c.want) || !strings.Contains(r.err, `set state.backend = "redis`) {
				t.Errorf("stderr does not say %q and how to name the backend:\n%s", c.want, r.err)
			}
			if _, err := os.Stat(filepath.Join(cwd, "data")); !os.IsNotExist(err) {
				t.Fatalf("a store was created under the current directory: %v", err)
			}
		})
	}

	// Named, the same URL is Redis, whoever names the backend; a flag fills
	// in what STATE_* and the file leave out, or replaces what they set.
	mustCode(t, runCtl(t, nil, export, "import", "--to-backend", "redis", "--to-redis-url", srv.URL()), ctl.ExitOK)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", nil, []string{"count", "--state-backend", "redis", "--state-redis-url", srv.URL()}},
		{"flag, URL from STATE_REDIS_URL", map[string]string{"STATE_REDIS_URL": srv.URL()}, []string{"count", "--state-backend", "Redis"}},
		{"STATE_BACKEND", map[string]string{"STATE_BACKEND": "redis"}, []string{"count", "--state-redis-url", srv.URL()}},
		{"file URL, flag backend", nil, []string{"count", "--config", cfg, "--state-backend", "redis"}},
		{"STATE_BACKEND redis_cluster replaced by the flag", map[string]string{"STATE_BACKEND": "redis_cluster"}, []string{"count", "--state-backend", "redis", "--state-redis-url", srv.URL()}},
		{"a bad STATE_REDIS_URL replaced by the flag", map[string]string{"STATE_BACKEND": "redis", "STATE_REDIS_URL": "redis://r:6379/99"}, []string{"count", "--state-redis-url", srv.URL()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCtl(t, c.env, "", c.args...)
			mustCode(t, r, ctl.ExitOK)
			var n struct{ Count int }
			if err := json.Unmarshal([]byte(r.out), &n); err != nil || n.Count != 1 {
				t.Errorf("count %s (%v), want the 1 incident imported into Redis", r.out, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(cwd, "data")); !os.IsNotExist(err) {
		t.Fatalf("a store was created under the current directory: %v", err)
	}

	// backup keeps the configuration's backend: a Redis one has no
	// checkpoint, said before any connection (it used to checkpoint the
	// Pebble directory at the default path instead).
	redisCfg := filepath.Join(t.TempDir(), "redis.toml")
	writeFile(t, redisCfg, "[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:1/0\"\n")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"backup --config", nil, []string{"--config", redisCfg}},
		{"backup with STATE_BACKEND", map[string]string{"STATE_BACKEND": "redis", "STATE_REDIS_URL": "redis://127.0.0.1:1/0"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "bk")
			r := runCtl(t, c.env, "", append([]string{"backup", "--to", to}, c.args...)...)
			mustCode(t, r, ctl.ExitError)
			if !strings.Contains(r.err, "backup: the redis backend has no checkpoint") {
				t.Errorf("stderr: %s", r.err)
			}
			if _, err := os.Stat(to); !os.IsNotExist(err) {
				t.Errorf("a checkpoint was written: %v", err)
			}
		})
	}

	// A flag's bad value is named by the flag.
	r := runCtl(t, map[string]string{"STATE_BACKEND": "redis"}, "", "count", "--state-redis-url", "redis://r:6379/99")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "--state-redis-url (state.redis_url): the database number must be 0 to 15") {
		t.Errorf("stderr: %s", r.err)
	}
}

// TestImportMigrateApplyStateVariables: a store of import and migrate
// named by its config file (--to-config, --from-config) takes the STATE_*
// variables as a worker started with that file does (the file, then the
// variables, then the flags); one named by flags alone ignores them. In a
// worker pod's shell
// (STATE_BACKEND=redis, STATE_REDIS_URL) an import with --to-config naming
// the workers' file (no backend in its [state] table) goes to the pods'
// Redis, not into a new Pebble store under the current directory, and a
// migrate with --from-config reads it. The summary marks a Pebble target
// at the default path whatever named it (here a file without state.path).
func TestImportMigrateApplyStateVariables(t *testing.T) {
	srv, cwd, export := redisAndOneIncident(t)
	cfg := filepath.Join(t.TempDir(), "incidentd.toml")
	writeFile(t, cfg, "[dedupe]\nwindow = \"15m\"\n[state]\n")
	pod := map[string]string{"STATE_BACKEND": "redis", "STATE_REDIS_URL": srv.URL()}

	r := runCtl(t, pod, export, "import", "--to-config", cfg)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "copied 1 incidents") || !strings.Contains(r.out, "into redis 127.0.0.1:") {
		t.Errorf("import summary: %s", r.out)
	}
	if _, err := os.Stat(filepath.Join(cwd, "data")); !os.IsNotExist(err) {
		t.Fatalf("a store was created under the current directory: %v", err)
	}
	count := func(env map[string]string, args ...string) int {
		t.Helper()
		r := runCtl(t, env, "", append([]string{"count"}, args...)...)
		mustCode(t, r, ctl.ExitOK)
		var n struct{ Count int }
		if err := json.Unmarshal([]byte(r.out), &n); err != nil {
			t.Fatalf("count: %v: %s", err, r.out)
		}
		return n.Count
	}
	if n := count(pod, "--config", cfg); n != 1 {
		t.Errorf("count --config with the pod's variables: %d, want the 1 imported", n)
	}

	// A side named by flags alone is what they say: the pod's variables
	// neither name its backend nor replace its password (this Redis has
	// none: a password would be refused).
	r = runCtl(t, map[string]string{"STATE_BACKEND": "redis"}, export, "import", "--to-redis-url", srv.URL(), "--to-key-prefix", "team-b")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "the only way for an import or migrate store named by --from-*/--to-* flags") {
		t.Errorf("stderr does not say that the flag is needed: %s", r.err)
	}
	pw := map[string]string{"STATE_BACKEND": "redis", "STATE_REDIS_URL": srv.URL(), "STATE_REDIS_PASSWORD": "the-pods-password"}
	r = runCtl(t, pw, export, "import", "--to-backend", "redis", "--to-redis-url", srv.URL(), "--to-key-prefix", "team-b")
	mustCode(t, r, ctl.ExitOK)
	if n := count(nil, "--state-backend", "redis", "--state-redis-url", srv.URL(), "--state-key-prefix", "team-b"); n != 1 {
		t.Errorf("count team-b: %d, want 1", n)
	}

	// migrate --from-config reads the pods' Redis; the target's flags
	// replace what the variables set.
	to := filepath.Join(t.TempDir(), "pebble")
	r = runCtl(t, pod, "", "migrate", "--from-config", cfg, "--to-backend", "pebble", "--to-path", to)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "copied 1 incidents") || !strings.Contains(r.out, "into pebble "+to+", target") {
		t.Errorf("migrate summary: %s", r.out)
	}

	// Without the variables the same file names the default Pebble path,
	// and the summary says so.
	r = runCtl(t, nil, export, "import", "--to-config", cfg)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "(the default state.path, under the current directory)") {
		t.Errorf("import summary without the default-path mark: %s", r.out)
	}
}

// redisAndOneIncident starts a Redis server, moves the test into an empty
// current directory (cwd), and exports one incident of a Pebble store.
func redisAndOneIncident(t *testing.T) (srv *redistest.Server, cwd, export string) {
	t.Helper()
	srv = redistest.StartStandalone(t, redistest.Options{})
	cwd = t.TempDir()
	t.Chdir(cwd)
	r := runCtl(t, nil, "", "export", "--state-path", filledPebble(t, 1))
	mustCode(t, r, ctl.ExitOK)
	return srv, cwd, r.out
}

// TestImportConfigNamingRedisWithoutURL: a --to-config file that names the
// Redis backend and leaves its URL to the pod's STATE_REDIS_URL, or to
// --to-redis-url, is as valid for import (which reads its [dedupe] table
// to convert the old system's records) and migrate as for the worker;
// they refused it as a Redis backend without a URL.
func TestImportConfigNamingRedisWithoutURL(t *testing.T) {
	srv, _, export := redisAndOneIncident(t)
	cfg := filepath.Join(t.TempDir(), "incidentd.toml")
	writeFile(t, cfg, "[state]\nbackend = \"redis\"\n[dedupe]\nfields = [\"source\", \"title\"]\n")
	db := func(n string) string { return strings.TrimSuffix(srv.URL(), "/0") + "/" + n }

	r := runCtl(t, map[string]string{"STATE_REDIS_URL": db("1")}, export, "import", "--to-config", cfg)
	mustCode(t, r, ctl.ExitOK)
	r = runCtl(t, nil, export, "import", "--to-config", cfg, "--to-redis-url", db("2"))
	mustCode(t, r, ctl.ExitOK)
	r = runCtl(t, nil, "", "migrate", "--from-backend", "redis", "--from-redis-url", db("2"), "--to-config", cfg, "--to-redis-url", db("3"))
	mustCode(t, r, ctl.ExitOK)
	for _, n := range []string{"1", "2", "3"} {
		r := runCtl(t, nil, "", "count", "--state-backend", "redis", "--state-redis-url", db(n))
		mustCode(t, r, ctl.ExitOK)
		if !strings.Contains(r.out, `"count": 1`) && !strings.Contains(r.out, `"count":1`) {
			t.Errorf("db %s: %s, want the 1 incident", n, r.out)
		}
	}
}

// TestImportStoppedMidwaySaysTheTargetIsIncomplete: an import whose writes
// start failing after some were made (Redis at maxmemory here; Ctrl-C
// alike) says how many incidents the target holds and that it must be
// emptied before a new run, which refuses a store that is not empty.
func TestImportStoppedMidwaySaysTheTargetIsIncomplete(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{Extra: []string{"maxmemory 3mb", "maxmemory-policy noeviction"}})
	r := runCtl(t, nil, "", "export", "--state-path", filledPebble(t, 4000))
	mustCode(t, r, ctl.ExitOK)
	r = runCtl(t, nil, r.out, "import", "--to-backend", "redis", "--to-redis-url", srv.URL())
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "OOM") || !strings.Contains(r.err, "an incomplete copy: empty it before running again") ||
		!regexp.MustCompile(`the target holds [1-9]\d* of the \d+ incidents`).MatchString(r.err) || !strings.Contains(r.err, "key prefix llm-im") {
		t.Errorf("stderr: %s", r.err)
	}
}
