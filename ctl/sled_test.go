package ctl_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
)

// TestSledAliasWarns: the old backend name "sled" works as pebble for
// incidentctl too, from a flag (any case), STATE_BACKEND or a config file,
// and each use logs incidentd's warning once, naming where it came from.
func TestSledAliasWarns(t *testing.T) {
	src := filledPebble(t, 50)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sled.toml")
	writeFile(t, cfg, "[state]\nbackend = \"sled\"\npath = \""+src+"\"\n")
	const warning = `"sled" is the old system's name for the embedded store; using "pebble". Pebble cannot read sled files`
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		from string
	}{
		{"flag", nil, []string{"count", "--state-backend", "sled", "--state-path", src}, "--state-backend"},
		{"flag in capitals", nil, []string{"verify", "--state-backend", "Sled", "--state-path", src}, "--state-backend"},
		{"STATE_BACKEND", map[string]string{"STATE_BACKEND": "sled"}, []string{"count", "--state-path", src}, "STATE_BACKEND"},
		{"config file", nil, []string{"list", "--config", cfg, "-o", "json"}, "state.backend in " + cfg},
		{"config file, flag names pebble too", nil, []string{"count", "--config", cfg, "--state-backend", "pebble"}, "state.backend in " + cfg},
		{"migrate source", nil, []string{"migrate", "--from-backend", "sled", "--from-path", src, "--to-backend", "pebble", "--to-path", filepath.Join(dir, "to1")}, "--from-backend"},
		{"migrate target", nil, []string{"migrate", "--from-backend", "pebble", "--from-path", src, "--to-backend", "sled", "--to-path", filepath.Join(dir, "to2")}, "--to-backend"},
		{"migrate source config", nil, []string{"migrate", "--from-config", cfg, "--to-backend", "pebble", "--to-path", filepath.Join(dir, "to3")}, "state.backend in " + cfg},
		{"bench", map[string]string{"NATS_URL": embeddedNATS(t)}, []string{"bench", "--events", "200", "--rate", "0", "--state-backend", "sled", "-o", "json"}, "--state-backend"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCtl(t, c.env, "", c.args...)
			mustCode(t, r, ctl.ExitOK)
			want := "config\t" + `{"warning": "` + c.from + `: \"sled\"`
			if n := strings.Count(r.err, want); n != 1 || !strings.Contains(r.err, strings.ReplaceAll(warning, `"`, `\"`)) {
				t.Errorf("stderr holds %d warnings %q, want one:\n%s", n, want, r.err)
			}
		})
	}
	// The flag replaces the backend of the file: no warning about it.
	r := runCtl(t, nil, "", "count", "--config", cfg, "--state-backend", "memory")
	mustCode(t, r, ctl.ExitUsage)
	if strings.Contains(r.err, "sled") {
		t.Errorf("a warning about the file's backend the flag replaced:\n%s", r.err)
	}
}
