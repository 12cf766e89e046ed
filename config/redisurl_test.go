package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRedactedRedisURLs: the start-up log's redis_url and
// redis_cluster_nodes are masked with the Redis store's own rule
// (redisurl.Redact, whose table test covers every URL form): the
// userinfo's password and every secret query parameter.
func TestRedactedRedisURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://user:password@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"redis+sentinel://:mPw@127.0.0.1:26411,127.0.0.1:26412/mymaster/0?sentinel_password=sPw",
			"redis+sentinel://:xxxxx@127.0.0.1:26411,127.0.0.1:26412/mymaster/0?sentinel_password=xxxxx"},
		{"redis://:pre?SECRETQ@127.0.0.1:16401/0", "redis://:xxxxx@127.0.0.1:16401/0"},
	}
	for _, tt := range tests {
		cfg := Default()
		cfg.State.RedisURL = tt.in
		cfg.State.RedisClusterNodes = []string{tt.in}
		b, err := json.Marshal(cfg.Redacted())
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			State struct {
				RedisURL string   `json:"redis_url"`
				Nodes    []string `json:"redis_cluster_nodes"`
			} `json:"state"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.State.RedisURL != tt.want || doc.State.Nodes[0] != tt.want {
			t.Errorf("%s: logged as %q and %q, want %q", tt.in, doc.State.RedisURL, doc.State.Nodes[0], tt.want)
		}
	}
}

// TestRedisURLProblems: a redis_url or cluster node the store could not
// open is a problem of configuration, naming the key, saying what is wrong
// and quoting the value with its passwords masked.
func TestRedisURLProblems(t *testing.T) {
	tests := []struct {
		name   string
		set    func(*StateConfig)
		field  string
		reason string
	}{
		{"database not a number", func(s *StateConfig) { s.RedisURL = "redis://h:6379/x" }, "state.redis_url", `the database number must be 0 to 15, got "redis://h:6379/x"`},
		{"database too high", func(s *StateConfig) { s.RedisURL = "redis://:pw@h/99" }, "state.redis_url", `the database number must be 0 to 15, got "redis://:xxxxx@h/99"`},
		{"unknown parameter", func(s *StateConfig) { s.RedisURL = "redis://h/0?foo=bar" }, "state.redis_url", `unknown query parameter "foo"`},
		{"sentinel parameter on redis://", func(s *StateConfig) { s.RedisURL = "redis://h/0?sentinel_password=pw" }, "state.redis_url", `only for redis+sentinel:// URLs, got "redis://h/0?sentinel_password=xxxxx"`},
		{"two hosts", func(s *StateConfig) { s.RedisURL = "redis://a:1,b:2" }, "state.redis_url", "exactly one host"},
		{"bad port", func(s *StateConfig) { s.RedisURL = "redis://h:99999" }, "state.redis_url", "port must be a number from 1 to 65535"},
		{"sentinel without master", func(s *StateConfig) { s.RedisURL = "redis+sentinel://s1,s2" }, "state.redis_url", "master name"},
		{"tls files with redis://", func(s *StateConfig) {
			s.Backend, s.RedisURL, s.Redis.TLSCAFile = BackendRedis, "redis://h:6379/0", "ca.pem"
		}, "state.redis_url", "is not TLS but state.redis.tls_ca_file is set: use a rediss:// or rediss+sentinel:// URL"},
		{"tls client cert with redis+sentinel://", func(s *StateConfig) {
			s.Backend, s.RedisURL, s.Redis.TLSCertFile, s.Redis.TLSKeyFile = BackendRedis, "redis+sentinel://s1/m", "c.pem", "k.pem"
		}, "state.redis_url", "state.redis.tls_cert_file and state.redis.tls_key_file are set"},
		{"tls files with plain cluster nodes", func(s *StateConfig) {
			s.Backend, s.RedisClusterNodes, s.Redis.TLSCAFile = BackendRedisCluster, []string{"a:7000", "redis://b:7001"}, "ca.pem"
		}, "state.redis_cluster_nodes", "is not TLS but state.redis.tls_ca_file is set: use rediss://host:port nodes"},
		// A URL with another problem still gets its tls_* one: every
		// problem is listed at once, not the second after the first is fixed.
		{"tls files with redis:// and a bad database", func(s *StateConfig) {
			s.Backend, s.RedisURL, s.Redis.TLSCAFile = BackendRedis, "redis://h:6379/16", "ca.pem"
		}, "state.redis_url", "is not TLS but state.redis.tls_ca_file is set"},
		{"tls files with plain cluster nodes, one with a bad port", func(s *StateConfig) {
			s.Backend, s.RedisClusterNodes, s.Redis.TLSCAFile = BackendRedisCluster, []string{"redis://a:99999"}, "ca.pem"
		}, "state.redis_cluster_nodes", "is not TLS but state.redis.tls_ca_file is set"},
		{"cluster node database", func(s *StateConfig) { s.RedisClusterNodes = []string{"redis://:pw@a:7000/3"} }, "state.redis_cluster_nodes[0]", `no database numbers (only database 0), got "redis://:xxxxx@a:7000/3"`},
		{"cluster node sentinel", func(s *StateConfig) { s.RedisClusterNodes = []string{"a:1", "redis+sentinel://s/m"} }, "state.redis_cluster_nodes[1]", "unsupported scheme"},
		{"cluster node parameter", func(s *StateConfig) { s.RedisClusterNodes = []string{"redis://a:7000?foo=1"} }, "state.redis_cluster_nodes[0]", `unknown query parameter "foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.set(&cfg.State)
			var p problems
			cfg.validate(&p)
			var got []string
			for _, pr := range p {
				got = append(got, pr.field+": "+pr.msg)
				if pr.field == tt.field && strings.Contains(pr.msg, tt.reason) {
					return
				}
			}
			t.Errorf("no %s problem with %q; got:\n%s", tt.field, tt.reason, strings.Join(got, "\n"))
		})
	}
	// TLS files with a TLS URL, or with a backend that does not use Redis,
	// are fine.
	for _, st := range []StateConfig{
		{Backend: BackendRedis, RedisURL: "rediss://h:6380/0"},
		{Backend: BackendRedis, RedisURL: "rediss+sentinel://s1/m"},
		{Backend: BackendRedisCluster, RedisClusterNodes: []string{"rediss://a:7000"}},
		{Backend: BackendMemory, RedisURL: "redis://h:6379/0"},
	} {
		cfg := Default()
		backend, url, nodes := st.Backend, st.RedisURL, st.RedisClusterNodes
		cfg.State.Backend, cfg.State.RedisURL, cfg.State.RedisClusterNodes = backend, url, nodes
		cfg.State.Redis.TLSCAFile = "ca.pem"
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", st, err)
		}
	}
}

// TestRedisURLProblemsFromEnv: Load names STATE_REDIS_URL when it set the
// URL, and never shows a password, even one with unencoded delimiters.
func TestRedisURLProblemsFromEnv(t *testing.T) {
	env := map[string]string{
		"STATE_BACKEND":             "redis",
		"STATE_REDIS_URL":           "redis://:pre?hunter2@127.0.0.1:16401/99",
		"STATE_REDIS_CLUSTER_NODES": "a:7000,u:Us3r:P@hunter2/w@b:7001:2",
	}
	_, err := Load("", mapEnv(env))
	got := problemsOf(t, err)
	want := []string{
		`STATE_REDIS_URL (state.redis_url): the database number must be 0 to 15, got "redis://:xxxxx@127.0.0.1:16401/99"`,
		`STATE_REDIS_CLUSTER_NODES (state.redis_cluster_nodes[1]): bad host:port`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("problems show a password:\n%v", err)
	}
}
