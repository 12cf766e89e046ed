package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seed is a user nkey seed made up for the tests (58 characters, "SU").
const seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZWFRQIKZWZCSCA"

// TestNATSFiles: Validate reads the [nats] files it is given and reports
// the missing, the unreadable and the wrong kind, without quoting them.
func TestNATSFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	creds := write("user.creds", "-----BEGIN NATS USER JWT-----\neyJ0eXAi.x.y\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n"+seed+"\n------END USER NKEY SEED------\n")
	seedOnly := write("user.nk", seed+"\n")
	junk := write("junk.txt", "hello s3cr3t\n")
	cert := write("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	key := write("key.pem", "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n")
	missing := filepath.Join(dir, "missing")
	external := func(c *Config) { c.NATS.URL = "tls://127.0.0.1:4222" }

	bad := []struct {
		name   string
		mutate func(c *Config)
		field  string
		bound  string
	}{
		{"creds missing", func(c *Config) { c.NATS.CredentialsFile = missing }, "nats.credentials_file", "does not exist"},
		{"creds directory", func(c *Config) { c.NATS.CredentialsFile = dir }, "nats.credentials_file", "is a directory"},
		{"creds holding a seed", func(c *Config) { c.NATS.CredentialsFile = seedOnly }, "nats.credentials_file", "holds an nkey seed but no user JWT"},
		{"creds junk", func(c *Config) { c.NATS.CredentialsFile = junk }, "nats.credentials_file", "holds no user JWT"},
		{"seed missing", func(c *Config) { c.NATS.NkeySeedFile = missing }, "nats.nkey_seed_file", "does not exist"},
		{"seed junk", func(c *Config) { c.NATS.NkeySeedFile = junk }, "nats.nkey_seed_file", "holds no user nkey seed"},
		{"seed and creds", func(c *Config) { c.NATS.NkeySeedFile = seedOnly; c.NATS.CredentialsFile = creds }, "nats.nkey_seed_file", "choose one"},
		{"seed and user", func(c *Config) { c.NATS.NkeySeedFile = seedOnly; c.NATS.User = "u" }, "nats.nkey_seed_file", "choose one"},
		{"ca missing", func(c *Config) { external(c); c.NATS.TLSCAFile = missing }, "nats.tls_ca_file", "does not exist"},
		{"ca not pem", func(c *Config) { external(c); c.NATS.TLSCAFile = junk }, "nats.tls_ca_file", "no PEM CERTIFICATE"},
		{"cert without key", func(c *Config) { external(c); c.NATS.TLSCertFile = cert }, "nats.tls_cert_file", "together"},
		{"key without cert", func(c *Config) { external(c); c.NATS.TLSKeyFile = key }, "nats.tls_cert_file", "together"},
		{"key not a key", func(c *Config) { external(c); c.NATS.TLSCertFile = cert; c.NATS.TLSKeyFile = cert }, "nats.tls_key_file", "no PEM PRIVATE KEY"},
		{"tls with embedded", func(c *Config) { c.NATS.TLSCAFile = cert }, "nats.tls_ca_file", "embedded server has no TLS"},
		{"server name with embedded", func(c *Config) { c.NATS.TLSServerName = "nats" }, "nats.tls_server_name", "embedded server has no TLS"},
		// The embedded server checks no credentials: they would protect nothing.
		{"user with embedded", func(c *Config) { c.NATS.User, c.NATS.Password = "u", "s3cr3t" }, "nats.user", "embedded server checks no credentials"},
		{"password with embedded", func(c *Config) { c.NATS.User, c.NATS.Password = "u", "s3cr3t" }, "nats.password", "embedded server checks no credentials"},
		{"token with embedded", func(c *Config) { c.NATS.Token = "s3cr3t" }, "nats.token", "embedded server checks no credentials"},
		{"creds with embedded", func(c *Config) { c.NATS.CredentialsFile = creds }, "nats.credentials_file", "embedded server checks no credentials"},
		{"seed with embedded", func(c *Config) { c.NATS.NkeySeedFile = seedOnly }, "nats.nkey_seed_file", "embedded server checks no credentials"},
		{"ping interval low", func(c *Config) { c.NATS.PingInterval = dur(500 * time.Millisecond) }, "nats.ping_interval", "between 1s and 10m"},
		{"ping interval high", func(c *Config) { c.NATS.PingInterval = dur(11 * time.Minute) }, "nats.ping_interval", "between 1s and 10m"},
		{"pings outstanding low", func(c *Config) { c.NATS.MaxPingsOutstanding = 0 }, "nats.max_pings_outstanding", "between 1 and 100"},
		{"pings outstanding high", func(c *Config) { c.NATS.MaxPingsOutstanding = 101 }, "nats.max_pings_outstanding", "between 1 and 100"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			got := problemsOf(t, cfg.ValidateWorker())
			for _, p := range got {
				if strings.Contains(p, "s3cr3t") || strings.Contains(p, seed) {
					t.Errorf("problem quotes the file: %s", p)
				}
			}
			for _, p := range got {
				if strings.HasPrefix(p, tt.field+": ") && strings.Contains(p, tt.bound) {
					return
				}
			}
			t.Errorf("no problem for %s mentioning %q; got:\n%s", tt.field, tt.bound, strings.Join(got, "\n"))
		})
	}

	good := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"creds", func(c *Config) { external(c); c.NATS.CredentialsFile = creds }},
		{"seed", func(c *Config) { external(c); c.NATS.NkeySeedFile = seedOnly }},
		{"decorated seed", func(c *Config) { external(c); c.NATS.NkeySeedFile = creds }},
		{"user", func(c *Config) { external(c); c.NATS.User, c.NATS.Password = "u", "s3cr3t" }},
		{"token", func(c *Config) { external(c); c.NATS.Token = "s3cr3t" }},
		{"tls", func(c *Config) {
			external(c)
			c.NATS.TLSCAFile, c.NATS.TLSCertFile, c.NATS.TLSKeyFile, c.NATS.TLSServerName = cert, cert, key, "nats.internal"
		}},
		{"ping bounds", func(c *Config) { c.NATS.PingInterval = dur(time.Second); c.NATS.MaxPingsOutstanding = 100 }},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

// TestNATSFileUnreadable: a file the worker may not read is named, with
// the reason, not its contents.
func TestNATSFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	path := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(path, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.NATS.CredentialsFile = path
	got := problemsOf(t, cfg.Validate())
	if len(got) != 1 || !strings.Contains(got[0], "cannot be read: permission denied") {
		t.Errorf("problems = %q", got)
	}
}
