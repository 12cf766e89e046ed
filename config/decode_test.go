package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadListsEveryFileProblem checks that values of the wrong type do not
// hide each other, unknown keys or invalid values: every problem is listed,
// file problems in document order and then the invalid values, each naming
// the TOML key and what was expected, and a key of the wrong type gets no
// second problem about the default it keeps.
func TestLoadListsEveryFileProblem(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		want   []string // problem i must contain want[i]; no other problems
		at     []string // positions that must appear in some problem
		forbid []string // text no problem may contain
	}{
		{
			name: "four bad durations",
			doc:  "[consumer]\nack_wait = \"banana\"\nbatch_wait = \"soon\"\nmax_age = 12\n[dedupe]\nwindow = \"forever\"\n",
			want: []string{
				`consumer.ack_wait: "banana" is not a duration (like "30s"`,
				`consumer.batch_wait: "soon" is not a duration (like "30s"`,
				`consumer.max_age: want a duration string (like "30s"), got the integer 12`,
				`dedupe.window: "forever" is not a duration (like "30s"`,
			},
			at: []string{"config.toml:2:1)", "config.toml:3:1)", "config.toml:4:1)", "config.toml:6:1)"},
		},
		{
			name: "strings for integers and an invalid value",
			doc:  "[state]\npool_size = \"many\"\n[consumer]\nbatch_size = \"big\"\n[log]\nlevel = \"loud\"\n",
			want: []string{
				`state.pool_size: want an integer, got the string "many"`,
				`consumer.batch_size: want an integer, got the string "big"`,
				`log.level: must be one of debug, info, warn, error, got "loud"`,
			},
			forbid: []string{"struct field", "StateConfig", "of type int", "cannot decode"},
		},
		{
			name: "type errors, unknown keys and invalid values together",
			doc: `[state]
backend = "etcd"
pool_size = "many"
key_prefix = ""
[state.pebble]
sync = "yes"
cache_sizee_mb = 3
[consumer]
batch_size = 0
ack_wait = "banana"
subjects = ["a.>", 3]
[dedupe]
fields = "source"
window = "1s"
[log]
level = "loud"
format = 1
`,
			want: []string{
				`state.pool_size: want an integer, got the string "many"`,
				`state.pebble.sync: want true or false, got the string "yes"`,
				"state.pebble.cache_sizee_mb: unknown key",
				`consumer.ack_wait: "banana" is not a duration`,
				"consumer.subjects[1]: want a string, got an integer",
				"dedupe.fields: want an array, got a string",
				"log.format: want a string, got an integer",
				`state.backend: unknown backend "etcd"`,
				"state.key_prefix: must not be empty",
				"consumer.batch_size: must be between 1 and 10000, got 0",
				`log.level: must be one of debug, info, warn, error, got "loud"`,
			},
			at: []string{"did you mean state.pebble.cache_size_mb?", "config.toml:7:1", "config.toml:11:1)"},
		},
		{
			name: "no second problem for a value of the wrong type",
			doc: `[state]
applied_retention = 5
[state.pebble]
cache_size_mb = 1.5
[consumer]
batch_size = "big"
ack_wait = 0
[dedupe]
fields = ["source", 3]
[http]
listen = 8080
`,
			want: []string{
				"state.applied_retention: want a duration string",
				"state.pebble.cache_size_mb: want an integer, got the float 1.5",
				`consumer.batch_size: want an integer, got the string "big"`,
				"consumer.ack_wait: want a duration string",
				"dedupe.fields[1]: want a string, got an integer",
				"http.listen: want a string, got an integer",
			},
		},
		{
			name: "tables and arrays of the wrong shape",
			doc:  "log = \"debug\"\nhttp = { listen = 8080 }\n[dedupe.source_fields]\n\"llm-gateway\" = \"title\"\n\"cost monitor\" = [\"title\", true]\n",
			want: []string{
				"log: want a table, got a string",
				"http.listen: want a string, got an integer",
				"dedupe.source_fields.llm-gateway: want an array, got a string",
				`dedupe.source_fields."cost monitor"[1]: want a string, got a boolean`,
			},
			at: []string{"config.toml:1:1)", "config.toml:2:10)", "config.toml:4:1)", "config.toml:5:1)"},
		},
		{
			name: "values that may be secrets are not echoed",
			doc:  "[state.redis]\npassword = 12345678\n[nats]\ntoken = 87654321\n[state]\nredis_cluster_nodes = \"redis://:hunter9@h:1\"\n",
			want: []string{
				"state.redis.password: want a string, got an integer",
				"state.redis_cluster_nodes: want an array, got a string",
				"nats.token: want a string, got an integer",
			},
			forbid: []string{"12345678", "87654321", "hunter9"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.doc), noEnv)
			got := problemsOf(t, err)
			all := strings.Join(got, "\n")
			if len(got) != len(tt.want) {
				t.Errorf("want %d problems, got %d:\n%s", len(tt.want), len(got), all)
			}
			for i, w := range tt.want {
				if i >= len(got) || !strings.Contains(got[i], w) {
					t.Errorf("problem %d should contain %q; got:\n%s", i, w, all)
				}
			}
			for _, a := range tt.at {
				if !strings.Contains(all, a) {
					t.Errorf("no problem at %q; got:\n%s", a, all)
				}
			}
			for _, f := range tt.forbid {
				if strings.Contains(all, f) {
					t.Errorf("problems contain %q:\n%s", f, all)
				}
			}
		})
	}
}

// TestLoadKeepsValidValuesBesideBadOnes checks that a value of the wrong type
// does not stop the keys after it from being decoded.
func TestLoadKeepsValidValuesBesideBadOnes(t *testing.T) {
	cfg, err := Load(writeFile(t, "[consumer]\nbatch_size = \"big\"\nbatch_wait = \"250ms\"\nmax_deliver = 7\n"), noEnv)
	if got := problemsOf(t, err); len(got) != 1 {
		t.Fatalf("want 1 problem, got %q", got)
	}
	if cfg.Consumer.BatchSize != 512 || cfg.Consumer.BatchWait.String() != "250ms" || cfg.Consumer.MaxDeliver != 7 {
		t.Errorf("consumer = %+v", cfg.Consumer)
	}
}

// FuzzDecodeFile: the per-key decoder never panics, whatever the document
// (the seeds are the shipped examples and a few awkward shapes), and a
// document it accepts without problems validates or yields problems, never
// a crash.
func FuzzDecodeFile(f *testing.F) {
	for _, name := range []string{"config-memory.toml", "config-pebble.toml", "config-redis.toml", "config-redis-cluster.toml"} {
		if b, err := os.ReadFile(filepath.Join("..", "examples", name)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"[state]\nbackend = 1\npath = []\n",
		"[consumer]\nack_wait = 12\nbatch_size = \"big\"\nsubjects = [1, [2]]\n",
		"[[state]]\nbackend = \"memory\"\n",
		"state = 3\n[dedupe.source_fields]\nx = \"y\"\n",
		"[dedupe]\nsource_fields = { a = [\"source\", 2] }\nwindow = 1979-05-27T07:32:00Z\n",
		"[\"state\"]\n\"back.end\" = \"x\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		var p problems
		if decodeFile("fuzz.toml", data, &cfg, &p, map[string]bool{}) && len(p) == 0 {
			_ = cfg.Validate()
		}
	})
}
