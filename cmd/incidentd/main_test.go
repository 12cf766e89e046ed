package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "incidentd ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	body := "[state]\nbackend = \"nosuch\"\n[consumer]\nbatch_size = 0\n[log]\nlevel = \"loud\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"--config", path}, &out, &errb)
	if code != exitConfig {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitConfig, errb.String())
	}
	for _, key := range []string{"state.backend", "consumer.batch_size", "log.level"} {
		if !strings.Contains(errb.String(), key) {
			t.Errorf("stderr does not name %s:\n%s", key, errb.String())
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d", code)
	}
}

func TestUnknownFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--nope"}, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d", code)
	}
}
