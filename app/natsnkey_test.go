package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// TestNATSNkeySeedFile: nats.nkey_seed_file logs in as the nkey user whose
// seed it holds; a seed the server does not know is refused.
func TestNATSNkeySeedFile(t *testing.T) {
	user := func() (string, string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		path := filepath.Join(t.TempDir(), "user.nk")
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		return pub, path
	}
	pub, seedFile := user()
	_, otherSeed := user()
	url := startNATS(t, server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, Nkeys: []*server.NkeyUser{{Nkey: pub}}}).ClientURL()
	for _, c := range []struct{ name, file, wantErr string }{
		{"known seed", seedFile, ""},
		{"unknown seed", otherSeed, "Authorization Violation"},
		{"missing file", filepath.Join(t.TempDir(), "none"), "nats.nkey_seed_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := config.Default().NATS
			n.NkeySeedFile = c.file
			nc, err := nats.Connect(url, append(app.NATSOptions(n), nats.Timeout(3*time.Second))...)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}
