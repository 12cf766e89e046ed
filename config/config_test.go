package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

func dur(d time.Duration) Duration { return Duration{d} }

// noEnv reads no environment variable.
func noEnv(string) (string, bool) { return "", false }

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T: %v", err, err)
	}
	if got := strings.Join(ve.Problems, "\n"); got != err.Error() {
		t.Fatalf("Error() = %q, want problems joined by newlines %q", err.Error(), got)
	}
	return ve.Problems
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultValidates(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if !cfg.Embedded() {
		t.Error("default config should run the embedded NATS server")
	}
	if cfg.State.Backend != BackendPebble || cfg.Consumer.BatchSize != 512 || cfg.Dedupe.Window.Duration != 15*time.Minute {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	for _, b := range Backends {
		c := Default()
		c.State.Backend = b
		c.State.RedisURL = "redis://localhost:6379/0"
		c.State.RedisClusterNodes = []string{"127.0.0.1:7000"}
		if err := c.Validate(); err != nil {
			t.Errorf("backend %s: %v", b, err)
		}
	}
	// Default returns fresh slices and maps.
	a, b := Default(), Default()
	a.Consumer.Subjects[0] = "changed"
	a.Dedupe.SourceFields["x"] = []string{"title"}
	if b.Consumer.Subjects[0] == "changed" || len(b.Dedupe.SourceFields) != 0 {
		t.Error("Default shares slices or maps between calls")
	}
}

func TestLoadNoFile(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.BackendDefaulted = true // no file, no STATE_BACKEND
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(\"\", nil) = %+v, want defaults %+v", cfg, want)
	}
}

// TestBounds breaks one rule at a time and checks the problem names the key
// and the bound.
func TestBounds(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		field  string // the dotted key the problem must start with
		bound  string // text the message must contain
	}{
		{"backend empty", func(c *Config) { c.State.Backend = "" }, "state.backend", "redis_cluster"},
		{"backend unknown", func(c *Config) { c.State.Backend = "etcd" }, "state.backend", "memory, pebble, redis, redis_cluster"},
		{"backend sled unnormalised", func(c *Config) { c.State.Backend = "sled" }, "state.backend", "pebble"},
		{"pebble path", func(c *Config) { c.State.Path = "" }, "state.path", "required"},
		{"redis url required", func(c *Config) { c.State.Backend = BackendRedis }, "state.redis_url", "required"},
		{"redis url scheme", func(c *Config) { c.State.Backend = BackendRedis; c.State.RedisURL = "http://localhost:6379" }, "state.redis_url", "redis+sentinel://"},
		{"redis url no scheme", func(c *Config) { c.State.RedisURL = "localhost:6379" }, "state.redis_url", "redis://"},
		{"cluster nodes required", func(c *Config) { c.State.Backend = BackendRedisCluster }, "state.redis_cluster_nodes", "at least 1"},
		{"cluster node scheme", func(c *Config) { c.State.RedisClusterNodes = []string{"http://h:1"} }, "state.redis_cluster_nodes[0]", "redis://"},
		{"cluster node bare", func(c *Config) { c.State.RedisClusterNodes = []string{"h:1", "nohost"} }, "state.redis_cluster_nodes[1]", "host:port"},
		{"cluster node port", func(c *Config) { c.State.RedisClusterNodes = []string{"h:70000"} }, "state.redis_cluster_nodes[0]", "65535"},
		{"cluster node mixed tls", func(c *Config) { c.State.RedisClusterNodes = []string{"rediss://a:1", "redis://b:1"} }, "state.redis_cluster_nodes", "rediss://"},
		{"cluster node passwords differ", func(c *Config) {
			c.State.RedisClusterNodes = []string{"redis://:OtherPw@h:1", "redis://:ClPw@h:2"}
		}, "state.redis_cluster_nodes", "cluster nodes 1 and 2 give different passwords"},
		{"pool size low", func(c *Config) { c.State.PoolSize = 0 }, "state.pool_size", "between 1 and 10000"},
		{"pool size high", func(c *Config) { c.State.PoolSize = 10001 }, "state.pool_size", "between 1 and 10000"},
		{"key prefix empty", func(c *Config) { c.State.KeyPrefix = "" }, "state.key_prefix", "empty"},
		{"key prefix space", func(c *Config) { c.State.KeyPrefix = "llm im" }, "state.key_prefix", "spaces"},
		{"applied retention", func(c *Config) { c.State.AppliedRetention = dur(30 * time.Second) }, "state.applied_retention", "1m"},
		{"applied retention horizon", func(c *Config) {
			c.State.AppliedRetention = dur(10 * time.Minute)
			c.Consumer.AckWait = dur(time.Hour)
		}, "state.applied_retention", "max_deliver × consumer.ack_wait = 5h"},
		{"incident retention low", func(c *Config) { c.State.IncidentRetention = dur(30 * time.Minute) }, "state.incident_retention", "between 1h and 87600h"},
		{"incident retention high", func(c *Config) { c.State.IncidentRetention = dur(87601 * time.Hour) }, "state.incident_retention", "between 1h and 87600h"},
		{"incident retention below window", func(c *Config) {
			c.State.IncidentRetention = dur(2 * time.Hour)
			c.Dedupe.Window = dur(3 * time.Hour)
		}, "state.incident_retention", "at least dedupe.window (3h)"},
		{"incident retention without sweep", func(c *Config) {
			c.State.IncidentRetention = dur(720 * time.Hour)
			c.Dedupe.SweepInterval = dur(0)
		}, "state.incident_retention", "dedupe.sweep_interval"},
		{"pebble cache", func(c *Config) { c.State.Pebble.CacheSizeMB = 4 }, "state.pebble.cache_size_mb", "between 8 and 65536"},
		{"pebble memtable", func(c *Config) { c.State.Pebble.MemtableSizeMB = 5000 }, "state.pebble.memtable_size_mb", "between 4 and 4096"},
		{"pebble bloom", func(c *Config) { c.State.Pebble.BloomBitsPerKey = -1 }, "state.pebble.bloom_bits_per_key", "between 0 and 32"},
		{"pebble record cache", func(c *Config) { c.State.Pebble.RecordCacheMB = -1 }, "state.pebble.record_cache_mb", "between 0 and 65536"},
		{"redis cert without key", func(c *Config) { c.State.Redis.TLSCertFile = "c.pem" }, "state.redis.tls_cert_file", "tls_key_file"},
		{"redis key without cert", func(c *Config) { c.State.Redis.TLSKeyFile = "k.pem" }, "state.redis.tls_cert_file", "together"},
		{"redis dial timeout", func(c *Config) { c.State.Redis.DialTimeout = dur(0) }, "state.redis.dial_timeout", "between 1ms and 10m"},
		{"nats url scheme", func(c *Config) { c.NATS.URL = "http://x:4222" }, "nats.url", "nats://"},
		{"nats password without user", func(c *Config) { c.NATS.URL = "nats://x:4222"; c.NATS.Password = "p" }, "nats.password", "nats.user"},
		{"nats token and user", func(c *Config) { c.NATS.URL = "nats://x:4222"; c.NATS.User = "u"; c.NATS.Token = "t" }, "nats.token", "nats.user"},
		{"embedded listen", func(c *Config) { c.NATS.EmbeddedListen = "4222" }, "nats.embedded_listen", "host:port"},
		{"embedded listen port", func(c *Config) { c.NATS.EmbeddedListen = "127.0.0.1:65536" }, "nats.embedded_listen", "between 0 and 65535"},
		{"embedded store dir", func(c *Config) { c.NATS.EmbeddedStoreDir = "" }, "nats.embedded_store_dir", "required"},
		{"embedded sync low", func(c *Config) { c.NATS.EmbeddedSyncInterval = SyncInterval{Every: 500 * time.Millisecond} }, "nats.embedded_sync_interval", `500ms is out of range: a duration from 1s to 1h, or "always"`},
		{"embedded sync high", func(c *Config) { c.NATS.EmbeddedSyncInterval = SyncInterval{Every: 2 * time.Hour} }, "nats.embedded_sync_interval", "from 1s to 1h"},
		{"stream name", func(c *Config) { c.Consumer.Stream = "IN.CIDENTS" }, "consumer.stream", "."},
		{"durable empty", func(c *Config) { c.Consumer.Durable = "" }, "consumer.durable", "empty"},
		{"dlq stream same", func(c *Config) { c.Consumer.DLQStream = "INCIDENTS" }, "consumer.dlq_stream", "consumer.stream"},
		{"dlq stream is the advisory stream", func(c *Config) { c.Consumer.DLQStream = "INCIDENTS_MAX_DELIVERIES" }, "consumer.dlq_stream", "max-deliveries"},
		{"stream name too long for its advisory stream", func(c *Config) { c.Consumer.Stream = strings.Repeat("S", 250) }, "consumer.stream", "at most 240 characters"},
		{"subjects empty", func(c *Config) { c.Consumer.Subjects = nil }, "consumer.subjects", "at least one"},
		{"subject bad", func(c *Config) { c.Consumer.Subjects = []string{"a.>.b"} }, "consumer.subjects[0]", "last token"},
		{"dlq prefix wildcard", func(c *Config) { c.Consumer.DLQSubjectPrefix = "dlq.*" }, "consumer.dlq_subject_prefix", "wildcards"},
		{"dlq overlaps", func(c *Config) { c.Consumer.Subjects = []string{"incidents.>"} }, "consumer.dlq_subject_prefix", "overlaps"},
		{"batch size low", func(c *Config) { c.Consumer.BatchSize = 0 }, "consumer.batch_size", "between 1 and 10000"},
		{"batch size high", func(c *Config) { c.Consumer.BatchSize = 10001; c.Consumer.MaxAckPending = 20000 }, "consumer.batch_size", "between 1 and 10000"},
		{"batch wait", func(c *Config) { c.Consumer.BatchWait = dur(2 * time.Minute) }, "consumer.batch_wait", "between 1ms and 1m"},
		{"ack wait low", func(c *Config) { c.Consumer.AckWait = dur(500 * time.Millisecond) }, "consumer.ack_wait", "between 1s and 1h"},
		{"ack wait vs batch wait", func(c *Config) {
			c.Consumer.BatchWait = dur(10 * time.Second)
			c.Consumer.AckWait = dur(5 * time.Second)
		}, "consumer.ack_wait", "greater than consumer.batch_wait (10s)"},
		{"max deliver", func(c *Config) { c.Consumer.MaxDeliver = 0 }, "consumer.max_deliver", "between 1 and 1000"},
		{"max ack pending below batch", func(c *Config) { c.Consumer.MaxAckPending = 100 }, "consumer.max_ack_pending", "consumer.batch_size (512)"},
		{"max ack pending zero beside a bad batch size", func(c *Config) { c.Consumer.BatchSize = 0; c.Consumer.MaxAckPending = 0 }, "consumer.max_ack_pending", "at least 1"},
		{"max ack pending high", func(c *Config) { c.Consumer.MaxAckPending = 1000001 }, "consumer.max_ack_pending", "1000000"},
		{"max age negative", func(c *Config) { c.Consumer.MaxAge = dur(-time.Hour) }, "consumer.max_age", "0"},
		{"duplicate window", func(c *Config) { c.Consumer.DuplicateWindow = dur(25 * time.Hour); c.Consumer.MaxAge = dur(0) }, "consumer.duplicate_window", "between 1s and 24h"},
		{"duplicate window vs max age", func(c *Config) { c.Consumer.MaxAge = dur(time.Minute) }, "consumer.duplicate_window", "consumer.max_age (1m)"},
		{"replicas", func(c *Config) { c.Consumer.Replicas = 6; c.NATS.URL = "nats://x:4222" }, "consumer.replicas", "between 1 and 5"},
		{"replicas embedded", func(c *Config) { c.Consumer.Replicas = 3 }, "consumer.replicas", "embedded"},
		{"max event bytes", func(c *Config) { c.Consumer.MaxEventBytes = 100 }, "consumer.max_event_bytes", "between 256 and 8388608"},
		{"max clock skew negative", func(c *Config) { c.Consumer.MaxClockSkew = dur(-time.Second) }, "consumer.max_clock_skew", "0 (no bound) or between 1s and 8760h"},
		{"orphan retries negative", func(c *Config) { c.Consumer.OrphanRetries = -1 }, "consumer.orphan_retries", "between 0 and 100"},
		{"orphan retry delay", func(c *Config) { c.Consumer.OrphanRetryDelay = dur(2 * time.Minute) }, "consumer.orphan_retry_delay", "1m"},
		{"max clock skew high", func(c *Config) { c.Consumer.MaxClockSkew = dur(8761 * time.Hour) }, "consumer.max_clock_skew", "8760h"},
		{"lag poll", func(c *Config) { c.Consumer.LagPollInterval = dur(time.Millisecond) }, "consumer.lag_poll_interval", "between 100ms and 10m"},
		{"retry initial", func(c *Config) { c.Consumer.RetryInitial = dur(0) }, "consumer.retry_initial", "between 1ms and 1m"},
		{"retry max zero beside a bad retry initial", func(c *Config) { c.Consumer.RetryInitial = dur(0); c.Consumer.RetryMax = dur(0) }, "consumer.retry_max", "at least 1ms"},
		{"retry max", func(c *Config) { c.Consumer.RetryMax = dur(10 * time.Millisecond) }, "consumer.retry_max", "consumer.retry_initial (100ms)"},
		{"dedupe window", func(c *Config) { c.Dedupe.Window = dur(721 * time.Hour) }, "dedupe.window", "between 1s and 720h"},
		{"sweep interval negative", func(c *Config) { c.Dedupe.SweepInterval = dur(-time.Second) }, "dedupe.sweep_interval", "must be 0s (off) or between 1s and 1h, got -1s"},
		{"sweep interval high", func(c *Config) { c.Dedupe.SweepInterval = dur(2 * time.Hour) }, "dedupe.sweep_interval", "0s (off) or between 1s and 1h"},
		{"dedupe fields empty", func(c *Config) { c.Dedupe.Fields = nil }, "dedupe.fields", "at least one"},
		{"dedupe unknown field", func(c *Config) { c.Dedupe.Fields = []string{"source", "colour"} }, "dedupe.fields[1]", "labels.<key>"},
		{"dedupe severity", func(c *Config) { c.Dedupe.Fields = []string{"title", "severity"} }, "dedupe.fields[1]", "never part of an incident's identity"},
		{"dedupe state", func(c *Config) { c.Dedupe.Fields = []string{"state"} }, "dedupe.fields[0]", "never part of an incident's identity"},
		{"dedupe time", func(c *Config) { c.Dedupe.Fields = []string{"time"} }, "dedupe.fields[0]", "never part of an incident's identity"},
		{"dedupe value", func(c *Config) { c.Dedupe.Fields = []string{"value"} }, "dedupe.fields[0]", "never part of an incident's identity"},
		{"dedupe duplicate", func(c *Config) { c.Dedupe.Fields = []string{"title", "labels.a", "title"} }, "dedupe.fields[2]", "twice"},
		{"dedupe empty label", func(c *Config) { c.Dedupe.Fields = []string{"labels."} }, "dedupe.fields[0]", "labels.<key>"},
		{"dedupe source fields", func(c *Config) {
			c.Dedupe.SourceFields = map[string][]string{"llm-gateway": {"source", "severity"}}
		}, "dedupe.source_fields.llm-gateway[1]", "never part"},
		{"dedupe source fields quoted key", func(c *Config) {
			c.Dedupe.SourceFields = map[string][]string{"cost monitor": {}}
		}, `dedupe.source_fields."cost monitor"`, "at least one"},
		{"http listen", func(c *Config) { c.HTTP.Listen = "8080" }, "http.listen", "host:port"},
		{"http listen clashes with nats", func(c *Config) { c.HTTP.Listen = ":4222" }, "http.listen", "nats.embedded_listen"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", "debug, info, warn, error"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "auto, json, console"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			got := problemsOf(t, cfg.Validate())
			for _, p := range got {
				if strings.HasPrefix(p, tt.field+": ") && strings.Contains(p, tt.bound) {
					return
				}
			}
			t.Errorf("no problem for %s mentioning %q; got:\n%s", tt.field, tt.bound, strings.Join(got, "\n"))
		})
	}
}

func TestValidAlternatives(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"sentinel url", func(c *Config) {
			c.State.Backend = BackendRedis
			c.State.RedisURL = "redis+sentinel://:pw@sentinel1:26379,sentinel2:26379,sentinel3:26379/mymaster/0"
		}},
		{"rediss url", func(c *Config) { c.State.Backend = BackendRedis; c.State.RedisURL = "rediss://u:p@localhost:6380/0" }},
		{"cluster nodes all forms", func(c *Config) {
			c.State.Backend = BackendRedisCluster
			c.State.RedisClusterNodes = []string{"redis://a:7000", "b:7001", "[::1]:7002"}
		}},
		{"max age unlimited", func(c *Config) { c.Consumer.MaxAge = dur(0); c.Consumer.DuplicateWindow = dur(24 * time.Hour) }},
		{"external nats cluster with replicas", func(c *Config) {
			c.NATS.URL = "nats://a:4222, tls://b:4222,c:4222"
			c.Consumer.Replicas = 3
			c.NATS.EmbeddedStoreDir = ""
		}},
		{"label fields", func(c *Config) {
			c.Dedupe.Fields = []string{"source", "labels.model", "labels.region", "description"}
			c.Dedupe.SourceFields = map[string][]string{"llm-gateway": {"source", "labels.model", "title"}}
		}},
		{"bloom disabled", func(c *Config) { c.State.Pebble.BloomBitsPerKey = 0 }},
		{"record cache disabled", func(c *Config) { c.State.Pebble.RecordCacheMB = 0 }},
		{"embedded sync always", func(c *Config) { c.NATS.EmbeddedSyncInterval = SyncInterval{Always: true} }},
		{"embedded sync 1s", func(c *Config) { c.NATS.EmbeddedSyncInterval = SyncInterval{Every: time.Second} }},
		{"listen port 0", func(c *Config) { c.NATS.EmbeddedListen = "127.0.0.1:0"; c.HTTP.Listen = "127.0.0.1:0" }},
		{"same port different hosts", func(c *Config) { c.NATS.EmbeddedListen = "127.0.0.1:8080"; c.HTTP.Listen = "10.0.0.1:8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.Consumer.BatchSize = 0
	cfg.State.PoolSize = -1
	cfg.Dedupe.Fields = []string{"severity"}
	cfg.Log.Level = "loud"
	cfg.HTTP.Listen = "nope"
	got := problemsOf(t, cfg.Validate())
	for _, field := range []string{"consumer.batch_size", "state.pool_size", "dedupe.fields[0]", "log.level", "http.listen"} {
		found := false
		for _, p := range got {
			found = found || strings.HasPrefix(p, field+": ")
		}
		if !found {
			t.Errorf("missing problem for %s in:\n%s", field, strings.Join(got, "\n"))
		}
	}
	if len(got) != 5 {
		t.Errorf("want 5 problems, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestLoadFile(t *testing.T) {
	path := writeFile(t, `
[state]
backend = "redis"
redis_url = "redis://localhost:6379/3"
applied_retention = "48h"
incident_retention = "720h"

[consumer]
subjects = ["a.>", "b.*"]
batch_wait = "250ms"
max_age = "0"

[dedupe]
fields = ["source", "labels.model"]
[dedupe.source_fields]
"llm-gateway" = ["source", "labels.model", "title"]
`)
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.Backend != BackendRedis || cfg.State.RedisURL != "redis://localhost:6379/3" {
		t.Errorf("state = %+v", cfg.State)
	}
	if cfg.State.IncidentRetention.Duration != 720*time.Hour {
		t.Errorf("incident_retention = %v, want 720h", cfg.State.IncidentRetention)
	}
	if cfg.State.AppliedRetention.Duration != 48*time.Hour || cfg.Consumer.BatchWait.Duration != 250*time.Millisecond || cfg.Consumer.MaxAge.Duration != 0 {
		t.Errorf("durations not decoded: %v %v %v", cfg.State.AppliedRetention, cfg.Consumer.BatchWait, cfg.Consumer.MaxAge)
	}
	if !reflect.DeepEqual(cfg.Consumer.Subjects, []string{"a.>", "b.*"}) {
		t.Errorf("subjects = %v (arrays must replace the default, not append)", cfg.Consumer.Subjects)
	}
	if got := cfg.Dedupe.FieldsFor("llm-gateway"); !reflect.DeepEqual(got, []string{"source", "labels.model", "title"}) {
		t.Errorf("FieldsFor(llm-gateway) = %v", got)
	}
	if got := cfg.Dedupe.FieldsFor("other"); !reflect.DeepEqual(got, []string{"source", "labels.model"}) {
		t.Errorf("FieldsFor(other) = %v", got)
	}
	// Untouched keys keep their defaults.
	if cfg.Consumer.BatchSize != 512 || cfg.State.Pebble.CacheSizeMB != 256 || cfg.Log.Level != "info" {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // each must appear in one problem
	}{
		{"unknown key", "[consumer]\nbatch_sizee = 3\n", []string{"consumer.batch_sizee: unknown key", "did you mean consumer.batch_size?"}},
		{"unknown table", "[state.pebbel]\ncache_size_mb = 3\n", []string{"state.pebbel: unknown key"}},
		{"misplaced key", "[state.redis]\nredis_url = \"redis://x\"\n", []string{"state.redis.redis_url: unknown key", "state.redis_url"}},
		{"unknown top-level", "verbose = true\n", []string{"verbose: unknown key"}},
		{"unknown keys and invalid values together", "[consumer]\nbatch_sizee = 3\nbatch_size = 0\n[log]\nlevell = \"x\"\n",
			[]string{"consumer.batch_sizee: unknown key", "log.levell: unknown key", "consumer.batch_size: must be between 1 and 10000"}},
		{"integer duration", "[dedupe]\nwindow = 900\n", []string{`dedupe.window: want a duration string (like "30s"), got the integer 900`}},
		{"integer zero duration", "[consumer]\nmax_age = 0\n", []string{"consumer.max_age: want a duration string"}},
		{"bad duration", "[consumer]\nack_wait = \"soon\"\n", []string{`consumer.ack_wait: "soon" is not a duration (like "30s"`}},
		{"days", "[consumer]\nmax_age = \"7d\"\n", []string{`consumer.max_age: "7d" is not a duration: days are not a unit`}},
		{"unitless string", "[consumer]\nack_wait = \"30\"\n", []string{`consumer.ack_wait: "30" is not a duration: it has no unit`}},
		{"wrong type", "[state]\npool_size = \"many\"\n", []string{`state.pool_size: want an integer, got the string "many"`, "config.toml:2:1"}},
		{"syntax", "[state\n", []string{"config.toml:1:"}},
		{"duplicate key in a table", "[state]\npool_size = 4\npool_size = 5\n", []string{"state.pool_size: key pool_size is already defined (", "config.toml:3:1"}},
		{"duplicate dotted key in a table", "[consumer]\nbatch_size = 1\n[state.redis]\nx.y = 1\nx.y = 2\n", []string{"state.redis.x.y: key y is already defined"}},
		{"duplicate key at the root", "top = 1\ntop = 2\n", []string{"top: key top is already defined"}},
		{"duplicate dotted key at the root", "state.pool_size = 1\nstate.pool_size = 2\n", []string{"state.pool_size: key pool_size is already defined"}},
		{"duplicate table", "[state]\npool_size = 1\n[state]\npath = \"x\"\n", []string{"state: table state already exists"}},
		{"sync interval integer", "[nats]\nembedded_sync_interval = 10\n", []string{`nats.embedded_sync_interval: want a duration string (like "2m") or "always", got the integer 10`}},
		{"sync interval word", "[nats]\nembedded_sync_interval = \"never\"\n", []string{`nats.embedded_sync_interval: "never" is not a duration (like "30s", "15m" or "1h30m"), or "always"`}},
		{"sync interval table", "[nats.embedded_sync_interval]\nevery = \"1s\"\n", []string{`nats.embedded_sync_interval: want a duration string`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.doc), noEnv)
			got := problemsOf(t, err)
			for _, w := range tt.want {
				found := false
				for _, p := range got {
					found = found || strings.Contains(p, w)
				}
				if !found {
					t.Errorf("no problem containing %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// TestMarshalRoundTrip checks that a marshalled config (e.g. printed by a
// "show effective config" command) loads back unchanged.
func TestMarshalRoundTrip(t *testing.T) {
	cfg := Default()
	cfg.Dedupe.SourceFields["llm-gateway"] = []string{"source", "labels.model", "title"}
	cfg.Consumer.MaxAge = dur(0)
	b, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(writeFile(t, string(b)), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip changed the config:\n%+v\n%+v\n%s", back, cfg, b)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want fs.ErrNotExist, got %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		env      map[string]string
		check    func(t *testing.T, c Config)
		warnings int
		problems []string
	}{
		{
			name: "state keys",
			env:  map[string]string{"STATE_BACKEND": "redis", "STATE_REDIS_URL": "redis://r:6379/1", "STATE_PATH": "/var/lib/x", "STATE_POOL_SIZE": " 42 "},
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendRedis || c.State.RedisURL != "redis://r:6379/1" || c.State.Path != "/var/lib/x" || c.State.PoolSize != 42 {
					t.Errorf("state = %+v", c.State)
				}
			},
		},
		{
			name: "cluster nodes split and trimmed",
			env:  map[string]string{"STATE_BACKEND": "redis_cluster", "STATE_REDIS_CLUSTER_NODES": " redis://node1:6379 ,redis://node2:6379,, node3:6379 ,"},
			check: func(t *testing.T, c Config) {
				want := []string{"redis://node1:6379", "redis://node2:6379", "node3:6379"}
				if !reflect.DeepEqual(c.State.RedisClusterNodes, want) {
					t.Errorf("nodes = %q, want %q", c.State.RedisClusterNodes, want)
				}
			},
		},
		{
			name: "env wins over file",
			file: "[state]\nbackend = \"memory\"\n[http]\nlisten = \":9000\"\n[log]\nlevel = \"warn\"\n",
			env:  map[string]string{"HTTP_LISTEN": "127.0.0.1:9100", "LOG_LEVEL": "debug", "NATS_URL": "nats://n:4222"},
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendMemory || c.HTTP.Listen != "127.0.0.1:9100" || c.Log.Level != "debug" || c.NATS.URL != "nats://n:4222" || c.Embedded() {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "blank values are unset",
			env:  map[string]string{"STATE_BACKEND": "", "STATE_POOL_SIZE": "  "},
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendPebble || c.State.PoolSize != 100 {
					t.Errorf("state = %+v", c.State)
				}
			},
		},
		{
			name:     "backend names ignore case, as the flags do",
			env:      map[string]string{"STATE_BACKEND": "Sled"},
			warnings: 1,
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendPebble {
					t.Errorf("state = %+v", c.State)
				}
			},
		},
		{
			name: "backend in upper case",
			env:  map[string]string{"STATE_BACKEND": "REDIS", "STATE_REDIS_URL": "redis://r:6379/1"},
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendRedis {
					t.Errorf("state = %+v", c.State)
				}
			},
		},
		{
			name:     "sled from env",
			env:      map[string]string{"STATE_BACKEND": "sled", "STATE_PATH": "./data/sled"},
			warnings: 1,
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendPebble || c.State.Path != "./data/sled" {
					t.Errorf("state = %+v", c.State)
				}
				if !strings.Contains(c.Warnings[0], "STATE_BACKEND") || !strings.Contains(c.Warnings[0], `"pebble"`) {
					t.Errorf("warning = %q", c.Warnings[0])
				}
			},
		},
		{
			name:     "sled from file",
			file:     "[state]\nbackend = \"sled\"\npath = \"./data/sled\"\n",
			warnings: 1,
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendPebble || !strings.Contains(c.Warnings[0], "state.backend in ") {
					t.Errorf("backend = %q, warnings = %q", c.State.Backend, c.Warnings)
				}
			},
		},
		{
			// The password from a Secret (secretKeyRef), the URL from the
			// ConfigMap: taken as given, masked wherever shown.
			name: "Redis passwords from the environment",
			file: "[state]\nbackend = \"redis\"\nredis_url = \"redis+sentinel://s1:26379/mymaster/0\"\n[state.redis]\npassword = \"from-file\"\nwait_replicas = 1\n",
			env:  map[string]string{"STATE_REDIS_PASSWORD": "s3cret pw ", "STATE_REDIS_SENTINEL_PASSWORD": "sentinel-pw"},
			check: func(t *testing.T, c Config) {
				if c.State.Redis.Password != "s3cret pw " || c.State.Redis.SentinelPassword != "sentinel-pw" {
					t.Errorf("redis = %+v", c.State.Redis)
				}
				js, err := json.Marshal(c.Redacted())
				if err != nil || strings.Contains(string(js), "s3cret") || strings.Contains(string(js), "sentinel-pw") {
					t.Errorf("redacted: %s, %v", js, err)
				}
			},
		},
		{
			name:     "a Redis URL with no backend named is no silent Pebble",
			env:      map[string]string{"STATE_REDIS_URL": "redis://:pw@r:6379/1"},
			problems: []string{`STATE_REDIS_URL (state.redis_url): is set, but state.backend is not, and the default backend (pebble, in "./data/pebble") does not use it: set state.backend = "redis" (STATE_BACKEND=redis;`},
		},
		{
			name:     "cluster nodes with no backend named, in the file",
			file:     "[state]\nredis_cluster_nodes = [\"redis://n1:7000\"]\npath = \"/var/lib/x\"\n",
			problems: []string{`state.redis_cluster_nodes: are set, but state.backend is not, and the default backend (pebble, in "/var/lib/x") does not use them: set state.backend = "redis_cluster" (STATE_BACKEND=redis_cluster;`},
		},
		{
			name:     "a key prefix with no backend named",
			file:     "[state]\nkey_prefix = \"team-a\"\n",
			problems: []string{`state.key_prefix: is set ("team-a"), but state.backend is not, and the default backend (pebble, in "./data/pebble") has no key prefix`},
		},
		{
			name: "a Redis URL with the backend from STATE_BACKEND",
			file: "[state]\nredis_url = \"redis://r:6379/1\"\n",
			env:  map[string]string{"STATE_BACKEND": "redis"},
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendRedis || c.State.RedisURL != "redis://r:6379/1" {
					t.Errorf("state = %+v", c.State)
				}
			},
		},
		{
			// The reference guide's own example: backend = "sled" beside a
			// redis_url "for Redis". Named, the backend is the operator's
			// choice; the unused URL is a warning.
			name:     "a Redis URL beside a named embedded backend",
			file:     "[state]\nbackend = \"pebble\"\npath = \"./data/sled\"\nredis_url = \"redis://localhost:6379/0\"\n",
			warnings: 1,
			check: func(t *testing.T, c Config) {
				if c.State.Backend != BackendPebble || !strings.Contains(c.Warnings[0], `state.redis_url set, but state.backend is "pebble", which does not use it`) {
					t.Errorf("backend = %q, warnings = %q", c.State.Backend, c.Warnings)
				}
			},
		},
		{
			// A key prefix means a Redis keyspace: with an embedded backend
			// named it is ignored, which says so as an unused URL does.
			name:     "a key prefix beside a named embedded backend",
			file:     "[state]\nbackend = \"memory\"\nkey_prefix = \"team-a\"\n",
			warnings: 1,
			check: func(t *testing.T, c Config) {
				if !strings.Contains(c.Warnings[0], `state.key_prefix set, but state.backend is "memory", which does not use it`) {
					t.Errorf("warnings = %q", c.Warnings)
				}
			},
		},
		{
			name:     "cluster nodes beside backend redis",
			env:      map[string]string{"STATE_BACKEND": "redis", "STATE_REDIS_URL": "redis://r:6379/1", "STATE_REDIS_CLUSTER_NODES": "n1:7000"},
			warnings: 1,
			check: func(t *testing.T, c Config) {
				if !strings.Contains(c.Warnings[0], `state.redis_cluster_nodes set, but state.backend is "redis"`) {
					t.Errorf("warnings = %q", c.Warnings)
				}
			},
		},
		{
			name:     "malformed pool size",
			env:      map[string]string{"STATE_POOL_SIZE": "abc"},
			problems: []string{`STATE_POOL_SIZE (state.pool_size): want an integer, got "abc"`},
		},
		{
			name:     "env problems and value problems together",
			env:      map[string]string{"STATE_POOL_SIZE": "1e3", "LOG_LEVEL": "LOUD", "STATE_BACKEND": "redis"},
			problems: []string{"STATE_POOL_SIZE (state.pool_size): ", "LOG_LEVEL (log.level): ", "state.redis_url: required"},
		},
		{
			name:     "problems with env values name the variable",
			env:      map[string]string{"LOG_LEVEL": "loud", "STATE_BACKEND": "mongo"},
			problems: []string{`STATE_BACKEND (state.backend): unknown backend "mongo"`, `LOG_LEVEL (log.level): must be one of debug, info, warn, error, got "loud"`},
		},
		{
			name:     "an unknown backend is quoted as given",
			env:      map[string]string{"STATE_BACKEND": "InMemory"},
			problems: []string{`STATE_BACKEND (state.backend): unknown backend "InMemory": one of memory, pebble, redis, redis_cluster`},
		},
		{
			name:     "env list element",
			env:      map[string]string{"STATE_BACKEND": "redis_cluster", "STATE_REDIS_CLUSTER_NODES": "a:7000,nohost"},
			problems: []string{`STATE_REDIS_CLUSTER_NODES (state.redis_cluster_nodes[1]): want "redis://host:port"`},
		},
		{
			name:     "file values are named by key even when other variables are set",
			file:     "[log]\nlevel = \"loud\"\n[http]\nlisten = \"8080\"\n",
			env:      map[string]string{"HTTP_LISTEN": "nope", "NATS_URL": "nats://n:4222"},
			problems: []string{"log.level: must be one of", `HTTP_LISTEN (http.listen): must be host:port (e.g. ":8080" or "127.0.0.1:8080"), got "nope"`},
		},
		{
			name:     "credentials in the NATS URL and nats.user",
			file:     "[nats]\nurl = \"nats://u:s3cret@n:4222\"\nuser = \"other\"\npassword = \"pw\"\n",
			problems: []string{`nats.url: "nats://u:xxxxx@n:4222" carries credentials and nats.user, nats.token, nats.credentials_file or nats.nkey_seed_file is set too`},
		},
		{
			name: "an empty [metrics] table keeps the defaults",
			file: "[metrics]\n",
			check: func(t *testing.T, c Config) {
				if c.Metrics.Path != "/metrics" || c.Metrics.Listen != "" {
					t.Errorf("metrics = %+v", c.Metrics)
				}
			},
		},
		{
			name: "http.allow_writes is off by default, set in the file, overridden by HTTP_ALLOW_WRITES",
			check: func(t *testing.T, c Config) {
				if c.HTTP.AllowWrites {
					t.Error("http.allow_writes is on by default")
				}
				for _, tc := range []struct {
					file, env string
					want      bool
				}{{"[http]\nallow_writes = true\n", "", true}, {"[http]\nallow_writes = true\n", "False", false}, {"", "TRUE", true}} {
					path := filepath.Join(t.TempDir(), "c.toml")
					if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
						t.Fatal(err)
					}
					got, err := Load(path, func(k string) (string, bool) { return tc.env, k == "HTTP_ALLOW_WRITES" })
					if err != nil || got.HTTP.AllowWrites != tc.want {
						t.Errorf("file %q, HTTP_ALLOW_WRITES=%q: allow_writes %v, %v; want %v", tc.file, tc.env, got.HTTP.AllowWrites, err, tc.want)
					}
				}
			},
		},
		{
			name:     "malformed HTTP_ALLOW_WRITES",
			env:      map[string]string{"HTTP_ALLOW_WRITES": "yes"},
			problems: []string{`HTTP_ALLOW_WRITES (http.allow_writes): want true or false, got "yes"`},
		},
		{
			name:     "http.allow_writes of the wrong type",
			file:     "[http]\nallow_writes = \"yes\"\n",
			problems: []string{`http.allow_writes: want true or false, got the string "yes"`},
		},
		{
			name: "[metrics] and the listen variables",
			file: "[metrics]\npath = \"/internal/metrics\"\nlisten = \":9000\"\n",
			env:  map[string]string{"METRICS_LISTEN": "127.0.0.1:9102", "NATS_EMBEDDED_LISTEN": "127.0.0.1:14222"},
			check: func(t *testing.T, c Config) {
				if c.Metrics.Path != "/internal/metrics" || c.Metrics.Listen != "127.0.0.1:9102" || c.NATS.EmbeddedListen != "127.0.0.1:14222" {
					t.Errorf("metrics = %+v, nats = %+v", c.Metrics, c.NATS)
				}
			},
		},
		{
			name: "bad [metrics] values",
			file: "[metrics]\npath = \"metrics\"\nlisten = \":8080\"\n",
			problems: []string{`metrics.path: must be a URL path such as "/metrics"`,
				`metrics.listen: ":8080" clashes with http.listen ":8080" on port 8080`},
		},
		{
			name:     "metrics.path taken by the worker",
			file:     "[metrics]\npath = \"/api/v1/incidents\"\n",
			problems: []string{`metrics.path: "/api/v1/incidents" is taken by the worker's own /api/ endpoint`},
		},
		{
			name: "metrics.pprof is off by default, set in the file or by METRICS_PPROF",
			file: "[metrics]\npprof = true\n",
			env:  map[string]string{"METRICS_PPROF": "true"},
			check: func(t *testing.T, c Config) {
				if Default().Metrics.Pprof {
					t.Error("metrics.pprof is on by default")
				}
				if !c.Metrics.Pprof {
					t.Error("metrics.pprof stayed off")
				}
				got, err := Load(writeFile(t, "[metrics]\npprof = true\n"), mapEnv(map[string]string{"METRICS_PPROF": "false"}))
				if err != nil || got.Metrics.Pprof {
					t.Errorf("METRICS_PPROF=false over the file: pprof %v, %v", got.Metrics.Pprof, err)
				}
			},
		},
		{
			name:     "malformed METRICS_PPROF",
			env:      map[string]string{"METRICS_PPROF": "on"},
			problems: []string{`METRICS_PPROF (metrics.pprof): want true or false, got "on"`},
		},
		{
			name:     "metrics.path under the profiles of metrics.pprof",
			file:     "[metrics]\npath = \"/debug/pprof/metrics\"\npprof = true\nlisten = \"127.0.0.1:9102\"\n",
			problems: []string{`metrics.path: "/debug/pprof/metrics" is taken by the profiles of metrics.pprof (/debug/pprof/)`},
		},
		{
			name:     "metrics listen clashes with the embedded server",
			env:      map[string]string{"METRICS_LISTEN": "127.0.0.1:4222"},
			problems: []string{`METRICS_LISTEN (metrics.listen): "127.0.0.1:4222" clashes with nats.embedded_listen "127.0.0.1:4222"`},
		},
		{
			name:     "env value replaces a file value of the wrong type and is checked",
			file:     "[state]\npool_size = \"many\"\n",
			env:      map[string]string{"STATE_POOL_SIZE": "0"},
			problems: []string{`state.pool_size: want an integer, got the string "many"`, "STATE_POOL_SIZE (state.pool_size): must be between 1 and 10000, got 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			cfg, err := Load(path, mapEnv(tt.env))
			if tt.problems != nil {
				got := problemsOf(t, err)
				if len(got) != len(tt.problems) {
					t.Errorf("want %d problems, got:\n%s", len(tt.problems), strings.Join(got, "\n"))
				}
				for _, w := range tt.problems {
					found := false
					for _, p := range got {
						found = found || strings.Contains(p, w)
					}
					if !found {
						t.Errorf("no problem containing %q; got:\n%s", w, strings.Join(got, "\n"))
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Warnings) != tt.warnings {
				t.Fatalf("warnings = %q, want %d", cfg.Warnings, tt.warnings)
			}
			tt.check(t, cfg)
		})
	}
}

func TestWarnings(t *testing.T) {
	cfg, err := Load(writeFile(t, "[state.pebble]\nsync = false\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "state.pebble.sync") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

// TestRedisWarnings: Sentinel credentials beside a URL that is not a
// Sentinel one, and a Sentinel URL without wait_replicas (a failover can drop
// acknowledged batches), and a wait_timeout not below read_timeout with
// wait_replicas, are warnings that never show a secret.
func TestRedisWarnings(t *testing.T) {
	const (
		unusedCreds  = "sentinel_password set, but only a redis+sentinel://"
		noWait       = "set wait_replicas = 1"
		waitOverRead = "keep read_timeout above wait_timeout"
		redisPlain   = "[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n"
	)
	sentinel := "[state]\nbackend = \"redis\"\nredis_url = \"redis+sentinel://127.0.0.1:26379/mymaster/0\"\n"
	tests := []struct {
		body, warning string
		want          bool
	}{
		{"[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n[state.redis]\nsentinel_password = \"pw\"\n", unusedCreds, true},
		{"[state]\nbackend = \"redis_cluster\"\nredis_cluster_nodes = [\"127.0.0.1:7000\"]\n[state.redis]\nsentinel_username = \"u\"\n", unusedCreds, true},
		{sentinel + "[state.redis]\nsentinel_password = \"pw\"\nwait_replicas = 1\n", unusedCreds, false},
		{"[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n", unusedCreds, false},
		{sentinel, noWait, true},
		{"[state]\nbackend = \"redis\"\nredis_url = \"rediss+sentinel://127.0.0.1:26379/mymaster/0\"\n", noWait, true},
		{sentinel + "[state.redis]\nwait_replicas = 1\n", noWait, false},
		{"[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n", noWait, false},
		// A WAIT longer than the read timeout fails as an i/o timeout
		// (seen with a worker: "redis lookup: read tcp …: i/o timeout"),
		// not as too few replicas.
		{redisPlain + "[state.redis]\nwait_replicas = 1\nwait_timeout = \"5s\"\nread_timeout = \"1s\"\n", waitOverRead, true},
		{redisPlain + "[state.redis]\nwait_replicas = 1\nwait_timeout = \"3s\"\n", waitOverRead, true}, // the default read_timeout is 3s
		{redisPlain + "[state.redis]\nwait_replicas = 1\nwait_timeout = \"2s\"\n", waitOverRead, false},
		{redisPlain + "[state.redis]\nwait_timeout = \"5s\"\nread_timeout = \"1s\"\n", waitOverRead, false}, // no WAIT is sent
	}
	for _, tt := range tests {
		cfg, err := Load(writeFile(t, tt.body), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		got := slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, tt.warning) })
		if got != tt.want {
			t.Errorf("%s: warnings %q; want %q among them: %v", tt.body, cfg.Warnings, tt.warning, tt.want)
		}
		if strings.Contains(strings.Join(cfg.Warnings, " "), "pw") {
			t.Errorf("a warning shows the secret: %q", cfg.Warnings)
		}
	}
}

func TestRedacted(t *testing.T) {
	secrets := []string{"s3cr3t-redis", "s3cr3t-sentinel", "s3cr3t-nats", "s3cr3t-token",
		"s3cr3t-url", "s3cr3t-node", "s3cr3t-sent-url", "s3cr3t-nats-url", "s3cr3t-nats-tok", "s3cr3t/#odd"}
	cfg := Default()
	cfg.State.Redis.Password = "s3cr3t-redis"
	cfg.State.Redis.SentinelPassword = "s3cr3t-sentinel"
	cfg.NATS.Password = "s3cr3t-nats"
	cfg.NATS.Token = "s3cr3t-token"
	cfg.NATS.User = "alice"
	cfg.State.RedisURL = "redis://user:s3cr3t-url@localhost:6379/0"
	cfg.State.RedisClusterNodes = []string{
		"redis://:s3cr3t-node@10.0.0.1:7000",
		"redis+sentinel://admin:s3cr3t-sent-url@sentinel1:26379,sentinel2:26379/mymaster/0",
		"rediss://bob:s3cr3t/#odd@10.0.0.3:7000",
		"10.0.0.4:7000",
	}
	cfg.NATS.URL = "nats://carol:s3cr3t-nats-url@n1:4222,nats://s3cr3t-nats-tok@n2:4222"

	r := cfg.Redacted()
	out := fmt.Sprintf("%+v", r)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q appears in redacted config:\n%s", s, out)
		}
	}
	for _, keep := range []string{"localhost:6379", "user:xxxxx@", "10.0.0.4:7000", "sentinel2:26379", "carol", "alice", "n2:4222"} {
		if !strings.Contains(out, keep) {
			t.Errorf("redacted config lost %q:\n%s", keep, out)
		}
	}
	if r.State.Redis.Password != "xxxxx" || r.NATS.Token != "xxxxx" {
		t.Errorf("secrets not masked: %+v", r)
	}
	// The original is untouched (no shared slices).
	if cfg.State.RedisClusterNodes[0] != "redis://:s3cr3t-node@10.0.0.1:7000" || cfg.State.Redis.Password != "s3cr3t-redis" {
		t.Error("Redacted modified the original config")
	}
	// Unset secrets stay empty so the log shows they are unset.
	if d := Default().Redacted(); d.State.Redis.Password != "" || d.NATS.Token != "" || d.State.RedisURL != "" {
		t.Errorf("unset secrets should stay empty: %+v", d)
	}
}

// TestJSONUsesTOMLKeys checks the JSON form of a redacted config, which the
// start-up log line shows: the TOML document's keys (not Go field names),
// durations as strings, secrets masked, Warnings left out.
func TestJSONUsesTOMLKeys(t *testing.T) {
	cfg := Default()
	cfg.Dedupe.SourceFields["llm-gateway"] = []string{"source", "title"}
	cfg.State.Redis.Password = "s3cr3t"
	cfg.Warnings = []string{"a warning"}
	b, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatal(err)
	}
	tb, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var fromTOML map[string]any
	if err := toml.Unmarshal(tb, &fromTOML); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "", fromJSON, fromTOML)
	if strings.Contains(string(b), "s3cr3t") || strings.Contains(strings.ToLower(string(b)), "warning") {
		t.Errorf("JSON leaks a secret or holds the warnings:\n%s", b)
	}
	consumer, _ := fromJSON["consumer"].(map[string]any)
	state, _ := fromJSON["state"].(map[string]any)
	redis, _ := state["redis"].(map[string]any)
	if consumer["ack_wait"] != "30s" || consumer["max_age"] != "168h" || redis["password"] != "xxxxx" || state["pool_size"] != 100.0 {
		t.Errorf("unexpected values:\n%s", b)
	}
}

// sameKeys checks that two decoded documents have the same keys, table by
// table.
func sameKeys(t *testing.T, prefix string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("JSON lacks key %s%s", prefix, k)
			continue
		}
		if wm, ok := w.(map[string]any); ok {
			gm, _ := g.(map[string]any)
			sameKeys(t, prefix+k+".", gm, wm)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("JSON has key %s%s, not in the TOML document", prefix, k)
		}
	}
}

func TestRedactNATSURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://n:4222", "nats://n:4222"},
		{"nats://tok@n:4222", "nats://xxxxx@n:4222"},
		{"nats://u:pw@n:4222", "nats://u:xxxxx@n:4222"},
		{"nats://u:p@ss/w@n:4222", "nats://u:xxxxx@n:4222"},
		// No '@', a port that is no number: a password whose '@' and host
		// are missing; all from it on is hidden.
		{"nats://alice:s3cret", "nats://alice:xxxxx"},
		{"nats://alice:s3/cret?x", "nats://alice:xxxxx"},
		{"alice:s3cret", "alice:xxxxx"},
		{"nats://[::1]:4222", "nats://[::1]:4222"},
		{"nats://n", "nats://n"},
	}
	for _, tt := range tests {
		if got := redactNATSURL(tt.in); got != tt.want {
			t.Errorf("redactNATSURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A list with white space after its commas (found by a black-box run:
	// the second URL showed as "nats:xxxxx@h:2").
	in, want := "nats://u:p1@h:1, nats://u:p2@h:2 ,tok@h:3", "nats://u:xxxxx@h:1, nats://u:xxxxx@h:2 ,xxxxx@h:3"
	if got := RedactNATSURL(in); got != want {
		t.Errorf("RedactNATSURL(%q) = %q, want %q", in, got, want)
	}
}

func TestProblemsDoNotLeakSecrets(t *testing.T) {
	cfg := Default()
	cfg.State.Backend = BackendRedisCluster
	cfg.State.RedisClusterNodes = []string{"ftp://:hunter2@h:1", "redis://:hunter3@", "u:hunter4@h:1:2"}
	cfg.State.RedisURL = "redis:/:hunter5@h"
	cfg.NATS.URL = "http://:hunter6@h:4222"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want problems")
	}
	for _, s := range []string{"hunter2", "hunter3", "hunter4", "hunter5", "hunter6"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("problem text leaks %q:\n%v", s, err)
		}
	}
}

// TestURLProblemsHideMisspeltSecrets: a secret in a query parameter the
// parser does not know, or a password whose '@' and host are missing, or
// one net/url cannot parse, shows in no problem, from the file or from the
// environment.
func TestURLProblemsHideMisspeltSecrets(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"state.redis_url", "redis+sentinel://s1:26379,s2:26379/mymaster/0?sentinel_pasword=K3YZ9Q", `unknown query parameter "sentinel_pasword"`},
		{"state.redis_url", "redis://h:6379/0?pasword=K3YZ9Q", `unknown query parameter "pasword"`},
		{"state.redis_url", "redis://default:K3YZ9Q", "the port must be a number"},
		{"state.redis_cluster_nodes", "redis://h:7000?pwd=K3YZ9Q", `unknown query parameter "pwd"`},
		{"nats.url", "nats://alice:K3YZ9Q", "not a valid server URL"},
		{"nats.url", "nats://alice:K3Y#Z9Q@n:4222", "not a valid server URL"},
		{"nats.url", "nats://n:4222,nats://bob:K3Y/Z9Q@m:4222", "not a valid server URL"},
	} {
		t.Run(c.value, func(t *testing.T) {
			cfg := Default()
			switch c.key {
			case "state.redis_url":
				cfg.State.Backend, cfg.State.RedisURL = BackendRedis, c.value
			case "state.redis_cluster_nodes":
				cfg.State.Backend, cfg.State.RedisClusterNodes = BackendRedisCluster, []string{c.value}
			default:
				cfg.NATS.URL = c.value
			}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: %v, want a problem with %q", err, c.want)
			}
			for _, m := range []string{"K3Y", "Z9Q"} {
				if strings.Contains(err.Error(), m) || strings.Contains(fmt.Sprint(cfg.Redacted()), m) {
					t.Errorf("%q shows in the problem or the redacted configuration:\n%v", m, err)
				}
			}
		})
	}
}

// TestSyncIntervalText: nats.embedded_sync_interval reads "always" (any
// case) or a duration, and writes back what it read.
func TestSyncIntervalText(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		want    SyncInterval
	}{
		{"always", "always", SyncInterval{Always: true}},
		{" Always ", "always", SyncInterval{Always: true}},
		{"10s", "10s", SyncInterval{Every: 10 * time.Second}},
		{"2m0s", "2m", SyncInterval{Every: 2 * time.Minute}},
	} {
		var got SyncInterval
		if err := got.UnmarshalText([]byte(tt.in)); err != nil || got != tt.want {
			t.Errorf("UnmarshalText(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if b, _ := got.MarshalText(); string(b) != tt.out {
			t.Errorf("MarshalText(%+v) = %q, want %q", got, b, tt.out)
		}
	}
	cfg, err := Load(writeFile(t, "[nats]\nembedded_sync_interval = \"always\"\n"), noEnv)
	if err != nil || !cfg.NATS.EmbeddedSyncInterval.Always {
		t.Errorf("Load: %+v, %v", cfg.NATS.EmbeddedSyncInterval, err)
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {100 * time.Millisecond, "100ms"}, {time.Minute, "1m"}, {90 * time.Second, "1m30s"},
		{168 * time.Hour, "168h"}, {2*time.Hour + 30*time.Minute, "2h30m"}, {time.Hour + 5*time.Second, "1h0m5s"},
	} {
		b, err := Duration{tt.d}.MarshalText()
		if err != nil || string(b) != tt.want {
			t.Errorf("MarshalText(%v) = %q, %v; want %q", tt.d, b, err, tt.want)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back.Duration != tt.d {
			t.Errorf("round trip of %q = %v, %v", b, back, err)
		}
	}
}

func TestExamplesLoad(t *testing.T) {
	want := map[string]Backend{
		"config-memory.toml":        BackendMemory,
		"config-pebble.toml":        BackendPebble,
		"config-redis.toml":         BackendRedis,
		"config-redis-cluster.toml": BackendRedisCluster,
	}
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if len(cfg.Warnings) != 0 {
				t.Errorf("warnings: %q", cfg.Warnings)
			}
			// The header names every variable that overrides the file.
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range EnvOverrides {
				if !strings.Contains(string(body), o.Var) {
					t.Errorf("the comments do not name %s (%s)", o.Var, o.Key)
				}
			}
			if b, ok := want[filepath.Base(f)]; ok {
				seen++
				if cfg.State.Backend != b {
					t.Errorf("backend = %q, want %q", cfg.State.Backend, b)
				}
			}
		})
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d expected example files in %v", seen, len(want), files)
	}
	redis, err := Load(filepath.Join("..", "examples", "config-redis.toml"), nil)
	if err != nil || redis.State.RedisURL != "redis://localhost:6379/0" {
		t.Errorf("config-redis.toml: url %q, %v", redis.State.RedisURL, err)
	}
	cluster, err := Load(filepath.Join("..", "examples", "config-redis-cluster.toml"), nil)
	if err != nil || len(cluster.State.RedisClusterNodes) != 6 || cluster.State.RedisClusterNodes[5] != "redis://127.0.0.1:7005" {
		t.Errorf("config-redis-cluster.toml: nodes %q, %v", cluster.State.RedisClusterNodes, err)
	}
}

// TestLoadOverrideWarnings: the warnings are those of the configuration
// with the override in (incidentctl's --state-* flags), not of the file or
// the environment it replaced.
func TestLoadOverrideWarnings(t *testing.T) {
	sentinel := "[state]\nbackend = \"redis\"\nredis_url = \"redis+sentinel://127.0.0.1:26379/mymaster/0\"\n"
	unused := "[state]\nbackend = \"pebble\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n"
	setURL := func(c *Config) map[string]string {
		c.State.RedisURL = "redis://127.0.0.1:6379/0"
		return map[string]string{"state.redis_url": "--state-redis-url"}
	}
	setBackend := func(b Backend) Override {
		return func(c *Config) map[string]string {
			c.State.Backend = b
			return map[string]string{"state.backend": "--state-backend"}
		}
	}
	for _, tt := range []struct {
		name     string
		body     string
		env      map[string]string
		override Override
		want     string // a warning containing it, or none at all when ""
	}{
		{"flag replaces a Sentinel URL", sentinel, nil, setURL, ""},
		{"flag keeps the Sentinel URL", sentinel, nil, setBackend(BackendRedis), "set wait_replicas = 1"},
		{"flag names the backend the URL is for", unused, nil, setBackend(BackendRedis), ""},
		{"flag names a backend beside a URL from the environment", "", map[string]string{"STATE_REDIS_URL": "redis://127.0.0.1:6379/0"}, setBackend(BackendPebble), `state.backend is "pebble", which does not use it`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.body != "" {
				path = writeFile(t, tt.body)
			}
			cfg, err := LoadOverride(path, mapEnv(tt.env), tt.override)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.ContainsFunc(cfg.Warnings, func(w string) bool { return tt.want != "" && strings.Contains(w, tt.want) })
			if tt.want == "" && len(cfg.Warnings) > 0 || tt.want != "" && !got {
				t.Errorf("warnings %q, want %q", cfg.Warnings, tt.want)
			}
		})
	}
}
