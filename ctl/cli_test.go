package ctl_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/ctl"
)

func TestVersionFlag(t *testing.T) {
	r := runCtl(t, nil, "", "--version")
	mustCode(t, r, ctl.ExitOK)
	if want := "incidentctl " + app.Version + " (" + runtime.Version() + ")\n"; r.out != want {
		t.Fatalf("--version printed %q, want %q", r.out, want)
	}
}

// A wrong number of arguments or an unknown command is a usage error, said
// once ("usage: ", never "usage: usage: ").
func TestArgumentErrorsExitTwo(t *testing.T) {
	cases := []struct {
		args []string
		want string // stderr
	}{
		{[]string{"get"}, "incidentctl: usage: accepts 1 arg(s), received 0\n"},
		{[]string{"get", "a", "b"}, "incidentctl: usage: accepts 1 arg(s), received 2\n"},
		{[]string{"restore"}, "incidentctl: usage: restore takes one CHECKPOINT_DIR, got 0 arguments\n"},
		{[]string{"nosuch"}, "incidentctl: unknown command \"nosuch\" for \"incidentctl\"\n"},
		// `--config "$CFG"` with CFG unset must not run on the defaults.
		{[]string{"count", "--config", ""}, "incidentctl: usage: --config \"\": an empty path (leave the flag out to use no file)\n"},
		{[]string{"setup", "--config", " "}, "incidentctl: usage: --config \" \": an empty path (leave the flag out to use no file)\n"},
		{[]string{"migrate", "--from-config", "", "--to-backend", "memory"}, "incidentctl: usage: --from-config \"\": an empty path (leave the flag out to use no file)\n"},
		{[]string{"dlq", "list", "--config="}, "incidentctl: usage: --config \"\": an empty path (leave the flag out to use no file)\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCtl(t, nil, "", c.args...)
			mustCode(t, r, ctl.ExitUsage)
			if r.err != c.want {
				t.Fatalf("stderr %q, want %q", r.err, c.want)
			}
		})
	}
}

// Every command that loads a config file exits 2 on an invalid one and
// lists every problem, one per line, indented as incidentd prints them.
func TestInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "[state]\nbackend = \"mongo\"\n[consumer]\nbatch_size = 0\n[log]\nlevel = \"loud\"\n")
	missing := filepath.Join(dir, "none.toml")
	problems := []string{"state.backend", "consumer.batch_size", "log.level"}
	cases := []struct {
		args     []string
		heading  string // the first line, "" for an unreadable file
		problems []string
	}{
		{[]string{"setup", "--config", bad}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"list", "--config", bad}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"count", "--config", bad}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"get", "x", "--config", bad}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"export", "--config", bad}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"verify", "--config", bad}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"backup", "--config", bad, "--to", filepath.Join(dir, "bk")}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"migrate", "--from-config", bad, "--to-backend", "memory"}, "incidentctl: source: invalid configuration (3 problems):", problems},
		{[]string{"import", "--to-config", bad}, "incidentctl: target: invalid configuration (3 problems):", problems},
		{[]string{"bench", "--config", bad, "--events", "1"}, "incidentctl: invalid configuration (3 problems):", problems},
		{[]string{"list", "--state-backend", "mongo"}, "incidentctl: invalid configuration (1 problem):", []string{"--state-backend (state.backend)"}},
		{[]string{"setup", "--config", missing}, "", nil},
		{[]string{"count", "--config", missing}, "", nil},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:2], " "), func(t *testing.T) {
			r := runCtl(t, nil, "", c.args...)
			mustCode(t, r, ctl.ExitUsage)
			lines := strings.Split(strings.TrimSuffix(r.err, "\n"), "\n")
			if c.heading == "" {
				if len(lines) != 1 || !strings.Contains(r.err, "none.toml") {
					t.Fatalf("unreadable config: %q", r.err)
				}
				return
			}
			if lines[0] != c.heading || len(lines) != 1+len(c.problems) {
				t.Fatalf("stderr %q, want the heading %q and %d problems", r.err, c.heading, len(c.problems))
			}
			for i, key := range c.problems {
				if !strings.HasPrefix(lines[1+i], "  "+key+": ") {
					t.Errorf("line %d is %q, want it indented and naming %s", 1+i, lines[1+i], key)
				}
			}
		})
	}
}
