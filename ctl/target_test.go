package ctl_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestImportSummaryNamesTheTarget: the summary line of import (and
// migrate) says where the target store is: without --to-path the default
// ./data/pebble under the current directory, as an absolute path marked as
// the default; a Redis target by address, database and key prefix,
// without its password.
func TestImportSummaryNamesTheTarget(t *testing.T) {
	lines, _ := exported(t, 3)
	in := strings.Join(lines, "\n") + "\n"

	cwd := t.TempDir()
	t.Chdir(cwd)
	r := runCtl(t, nil, in, "import", "--to-backend", "pebble")
	mustCode(t, r, ctl.ExitOK)
	want := "into pebble " + filepath.Join(cwd, "data", "pebble") + " (the default state.path, under the current directory)"
	if !strings.Contains(r.out, want) {
		t.Errorf("summary does not say %q:\n%s", want, r.out)
	}
	other := filepath.Join(t.TempDir(), "p")
	r = runCtl(t, nil, in, "import", "--to-backend", "pebble", "--to-path", other)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "into pebble "+other+", target now holds 3") {
		t.Errorf("summary does not name %s:\n%s", other, r.out)
	}

	const pass = "imp0rt-s3cret"
	srv := redistest.StartStandalone(t, redistest.Options{RequirePass: pass})
	r = runCtl(t, nil, in, "import", "--to-backend", "redis", "--to-redis-url", "redis://:"+pass+"@"+srv.Addr+"/2", "--to-key-prefix", "imp")
	mustCode(t, r, ctl.ExitOK)
	if want := "into redis " + srv.Addr + " db 2, key prefix imp, target now holds 3"; !strings.Contains(r.out, want) {
		t.Errorf("summary does not say %q:\n%s", want, r.out)
	}
	if strings.Contains(r.out+r.err, pass) {
		t.Errorf("output shows the password:\n%s\n%s", r.out, r.err)
	}
}
