package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbeddedCredentials: a worker given NATS credentials without
// nats.url is refused (the embedded server checks none, so they would
// protect nothing), while incidentctl, which may take the URL from a flag,
// loads the same file.
func TestEmbeddedCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("[nats]\nuser = \"alice\"\npassword = \"s3cr3t\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	got := problemsOf(t, err)
	want := []string{"nats.user: is set but nats.url is empty", "nats.password: is set but nats.url is empty"}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, "\n"), w) {
			t.Errorf("Load: no problem %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, p := range got {
		if strings.Contains(p, "s3cr3t") {
			t.Errorf("problem quotes the password: %s", p)
		}
	}
	if _, err := LoadOverride(path, nil, nil); err != nil {
		t.Errorf("LoadOverride (incidentctl's) = %v, want the file accepted", err)
	}
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}
	if _, err := Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Errorf("Load with NATS_URL = %v", err)
	}
}

// TestEmbeddedListenWarning: an embedded server listening beyond loopback
// is a start-up warning (it has no authentication and no TLS).
func TestEmbeddedListenWarning(t *testing.T) {
	for _, c := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:4222", false}, {"[::1]:4222", false}, {"localhost:4222", false}, {"LOCALHOST:4222", false},
		{":4222", true}, {"0.0.0.0:4222", true}, {"10.0.0.7:4222", true}, {"nats.internal:4222", true},
	} {
		env := map[string]string{"NATS_EMBEDDED_LISTEN": c.listen}
		cfg, err := Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatalf("%s: %v", c.listen, err)
		}
		warned := strings.Contains(strings.Join(cfg.Warnings, "\n"), "is not a loopback address")
		if warned != c.warn {
			t.Errorf("embedded_listen %q: warned %v, want %v (%q)", c.listen, warned, c.warn, cfg.Warnings)
		}
	}
	env := map[string]string{"NATS_EMBEDDED_LISTEN": "0.0.0.0:4222", "NATS_URL": "nats://127.0.0.1:4222"}
	cfg, err := Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(cfg.Warnings, "\n"), "loopback") {
		t.Errorf("warned about the embedded server with nats.url set: %q", cfg.Warnings)
	}
}

// TestUnusedEmbeddedKeys: embedded-server keys changed from their defaults
// while nats.url is set are a warning (no embedded server starts); at
// their defaults, or without nats.url, they are not.
func TestUnusedEmbeddedKeys(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"defaults", map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}, ""},
		{"listen", map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "NATS_EMBEDDED_LISTEN": "127.0.0.1:5222"},
			"nats.embedded_listen set, but nats.url is set too: the worker connects to those servers and starts no embedded one, so it configures nothing"},
		{"embedded", map[string]string{"NATS_EMBEDDED_LISTEN": "127.0.0.1:5222"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load("", func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "starts no embedded one") {
					got = w
				}
			}
			if got != c.want {
				t.Fatalf("warning %q, want %q", got, c.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("[nats]\nurl = \"nats://127.0.0.1:4222\"\nembedded_store_dir = \"/var/lib/nats\"\nembedded_sync_interval = \"always\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(cfg.Warnings, "\n"); !strings.Contains(w, "nats.embedded_store_dir and nats.embedded_sync_interval set, but nats.url is set too") || !strings.Contains(w, "they configure nothing") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
}
