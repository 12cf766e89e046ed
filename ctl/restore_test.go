package ctl_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestBackupRestore restores a backup by copy (the checkpoint stays as it
// was and can be restored again) and by move, into a new and into an empty
// directory: each restored store holds the incidents that were backed up.
func TestBackupRestore(t *testing.T) {
	src, want := filledWithIncidents(t, 1500)
	bk := t.TempDir() + "/backup"
	mustCode(t, runCtl(t, nil, "", "backup", "--state-path", src, "--to", bk), ctl.ExitOK)
	before := names(t, bk)
	printed := fmt.Sprintf("(%d incidents)", len(want))

	cases := []struct {
		name   string
		target func(t *testing.T) string
		move   bool
	}{
		{"copy into a new directory", func(t *testing.T) string { return t.TempDir() + "/data/pebble" }, false},
		{"copy into an empty directory", func(t *testing.T) string { return t.TempDir() }, false},
		{"move into an empty directory", func(t *testing.T) string { return t.TempDir() }, true},
		{"move into a new directory", func(t *testing.T) string { return t.TempDir() + "/pebble" }, true},
		{"copy into a fresh volume's root", func(t *testing.T) string {
			d := t.TempDir()
			if err := os.Mkdir(d+"/lost+found", 0o700); err != nil {
				t.Fatal(err)
			}
			return d
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := bk
			if c.move { // a copy of its own, to move away
				from = t.TempDir() + "/checkpoint"
				mustCode(t, runCtl(t, nil, "", "restore", bk, "--state-path", from), ctl.ExitOK)
			}
			dst := c.target(t)
			args := []string{"restore", from, "--state-path", dst}
			if c.move {
				args = append(args, "--move")
			}
			r := runCtl(t, nil, "", args...)
			mustCode(t, r, ctl.ExitOK)
			if !strings.Contains(r.out, printed) {
				t.Errorf("restore printed %q, want the incident count %s", r.out, printed)
			}
			if _, err := os.Stat(from); c.move != os.IsNotExist(err) {
				t.Errorf("move=%t: the checkpoint exists afterwards: %v", c.move, err == nil)
			}
			requireRestored(t, dst, want)
			mustCode(t, runCtl(t, nil, "", "verify", "--state-backend", "pebble", "--state-path", dst), ctl.ExitOK)
		})
	}
	if after := names(t, bk); !slices.Equal(before, after) {
		t.Errorf("copying changed the checkpoint: %v, then %v", before, after)
	}
}

// requireRestored checks that dst holds want and nothing a restore leaves
// while it works.
func requireRestored(t *testing.T, dst string, want []*incident.Incident) {
	t.Helper()
	for _, n := range names(t, dst) {
		if strings.HasPrefix(n, ".restore-") {
			t.Errorf("%s was left in the target", n)
		}
	}
	d := openPebble(t, dst)
	sameIncidents(t, want, allIncidents(t, d))
	_ = d.Close()
}

// TestRestoreRefuses: a wrong command line exits 2; a checkpoint that is no
// database, is held by a store or does not open, and a target that holds
// anything or is held by a running store exit 1 and leave both as they
// were.
func TestRestoreRefuses(t *testing.T) {
	src := filledPebble(t, 300)
	bk := t.TempDir() + "/backup"
	mustCode(t, runCtl(t, nil, "", "backup", "--state-path", src, "--to", bk), ctl.ExitOK)

	heldDir := t.TempDir() + "/live" // a running worker's directory
	live := openPebble(t, heldDir)
	defer live.Close()

	notEmpty := t.TempDir()
	writeFile(t, filepath.Join(notEmpty, "notes.txt"), "mine\n")
	emptyDir := t.TempDir()
	broken := t.TempDir() + "/broken" // every sstable gone
	mustCode(t, runCtl(t, nil, "", "restore", bk, "--state-path", broken), ctl.ExitOK)
	ssts := 0
	for _, n := range names(t, broken) {
		if strings.HasSuffix(n, ".sst") {
			ssts++
			if err := os.Remove(filepath.Join(broken, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ssts == 0 {
		t.Fatal("the checkpoint has no sstables; the broken case proves nothing")
	}

	newTarget := func() string { return t.TempDir() + "/new" }
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no checkpoint argument", []string{"restore", "--state-path", newTarget()}, ctl.ExitUsage, "one CHECKPOINT_DIR"},
		{"no --state-path", []string{"restore", bk}, ctl.ExitUsage, "--state-path DIR is required"},
		{"target holds a file", []string{"restore", bk, "--state-path", notEmpty}, ctl.ExitError, "not an empty directory"},
		{"target is a file", []string{"restore", bk, "--state-path", filepath.Join(notEmpty, "notes.txt")}, ctl.ExitError, "not a directory"},
		{"target held by a worker", []string{"restore", bk, "--state-path", heldDir}, ctl.ExitError, "stop the worker first"},
		{"checkpoint held by a worker", []string{"restore", heldDir, "--state-path", newTarget()}, ctl.ExitError, "the directory of a running store"},
		{"checkpoint is no database", []string{"restore", emptyDir, "--state-path", newTarget()}, ctl.ExitError, "no Pebble database"},
		{"checkpoint missing", []string{"restore", t.TempDir() + "/none", "--state-path", newTarget()}, ctl.ExitError, "no such file"},
		{"target inside the checkpoint", []string{"restore", bk, "--state-path", bk + "/new"}, ctl.ExitError, "overlap"},
		{"checkpoint does not open", []string{"restore", broken, "--state-path", newTarget()}, ctl.ExitError, "does not open"},
		{"checkpoint does not open, empty target", []string{"restore", broken, "--state-path", emptyDir}, ctl.ExitError, "does not open"},
		{"checkpoint does not open, move", []string{"restore", broken, "--state-path", newTarget(), "--move"}, ctl.ExitError, "does not open"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCtl(t, nil, "", c.args...)
			mustCode(t, r, c.code)
			if !strings.Contains(r.err, c.stderr) {
				t.Errorf("stderr %q, want it to say %q", r.err, c.stderr)
			}
			// A new target is not created, an existing one is left as it was.
			if i := slices.Index(c.args, "--state-path"); strings.HasSuffix(c.args[i+1], "/new") {
				if _, err := os.Stat(c.args[i+1]); !os.IsNotExist(err) {
					t.Errorf("the target %s exists afterwards", c.args[i+1])
				}
			}
		})
	}
	if _, err := os.Stat(broken); err != nil {
		t.Errorf("a checkpoint that does not open was moved: %v", err)
	}
	if n := names(t, emptyDir); len(n) != 0 {
		t.Errorf("the empty checkpoint or target holds %v afterwards", n)
	}
	if n := names(t, notEmpty); !slices.Equal(n, []string{"notes.txt"}) {
		t.Errorf("the non-empty target holds %v afterwards", n)
	}
}

// TestBackupOfHeldStore: backup of a directory a worker holds says what to
// do instead (stop it, or export through its API), not --api-url, which
// backup does not have.
func TestBackupOfHeldStore(t *testing.T) {
	dir := t.TempDir() + "/pebble"
	s := openPebble(t, dir)
	defer s.Close()
	r := runCtl(t, nil, "", "backup", "--state-path", dir, "--to", t.TempDir()+"/bk")
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "stop the worker") || !strings.Contains(r.err, "incidentctl export --api-url") ||
		strings.Contains(r.err, "query it with --api-url") {
		t.Errorf("stderr %q", r.err)
	}
	// Queries keep pointing at --api-url, migrate at --from-api-url.
	r = runCtl(t, nil, "", "count", "--state-backend", "pebble", "--state-path", dir)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "query it with --api-url") {
		t.Errorf("count: stderr %q", r.err)
	}
	r = runCtl(t, nil, "", "migrate", "--from-backend", "pebble", "--from-path", dir, "--to-backend", "pebble", "--to-path", t.TempDir())
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "--from-api-url") {
		t.Errorf("migrate: stderr %q", r.err)
	}
}

// splitMove renames half of from's files (never the markers that make a
// database, which a restore renames last) into to: where a restore killed
// in the middle of its renames leaves them.
func splitMove(t *testing.T, from, to string) {
	t.Helper()
	moved := 0
	for i, n := range names(t, from) {
		if i%2 == 1 || n == "LOCK" || n == "CURRENT" || strings.HasPrefix(n, "marker.") {
			continue
		}
		if err := os.Rename(filepath.Join(from, n), filepath.Join(to, n)); err != nil {
			t.Fatal(err)
		}
		moved++
	}
	if moved == 0 {
		t.Fatal("no file to move")
	}
}

// TestRestoreTakesUpAnInterruptedRestore: a restore killed in its copy or
// in its renames leaves a target that a worker refuses, naming the
// leftover; running the same restore again finishes it (a move) or starts
// it over (a copy); a move's half-renamed target is not taken for another
// checkpoint's, nor for a copy's.
func TestRestoreTakesUpAnInterruptedRestore(t *testing.T) {
	src, want := filledWithIncidents(t, 600)
	bk := t.TempDir() + "/backup"
	mustCode(t, runCtl(t, nil, "", "backup", "--state-path", src, "--to", bk), ctl.ExitOK)
	refusedAsLeftover := func(t *testing.T, dst string) {
		t.Helper()
		r := runCtl(t, nil, "", "count", "--state-path", dst)
		mustCode(t, r, ctl.ExitError)
		if !strings.Contains(r.err, "the leftover of an interrupted incidentctl restore") {
			t.Errorf("opening the leftover: %s", r.err)
		}
	}

	t.Run("copy killed in its renames", func(t *testing.T) {
		dst := t.TempDir()
		staging := filepath.Join(dst, ".restore-1234")
		mustCode(t, runCtl(t, nil, "", "restore", bk, "--state-path", staging), ctl.ExitOK)
		if err := os.WriteFile(filepath.Join(dst, "LOCK"), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		splitMove(t, staging, dst)
		refusedAsLeftover(t, dst)
		r := runCtl(t, nil, "", "restore", bk, "--state-path", dst)
		mustCode(t, r, ctl.ExitOK)
		requireRestored(t, dst, want)
	})

	t.Run("move killed in its renames", func(t *testing.T) {
		ckpt := t.TempDir() + "/checkpoint"
		mustCode(t, runCtl(t, nil, "", "restore", bk, "--state-path", ckpt), ctl.ExitOK)
		dst := t.TempDir()
		abs, _ := filepath.Abs(ckpt)
		if err := os.WriteFile(filepath.Join(dst, ".restore-move"), []byte(abs+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		splitMove(t, ckpt, dst)
		refusedAsLeftover(t, dst)

		other := t.TempDir() + "/other"
		mustCode(t, runCtl(t, nil, "", "restore", bk, "--state-path", other), ctl.ExitOK)
		for _, args := range [][]string{{"restore", bk, "--state-path", dst}, {"restore", other, "--state-path", dst, "--move"}} {
			r := runCtl(t, nil, "", args...)
			mustCode(t, r, ctl.ExitError)
			if !strings.Contains(r.err, "whose restore --move was interrupted") || !strings.Contains(r.err, abs) {
				t.Errorf("%v: %s", args, r.err)
			}
		}
		r := runCtl(t, nil, "", "restore", ckpt, "--state-path", dst, "--move")
		mustCode(t, r, ctl.ExitOK)
		if !strings.Contains(r.out, fmt.Sprintf("(%d incidents)", len(want))) {
			t.Errorf("restore printed %q", r.out)
		}
		if _, err := os.Stat(ckpt); !os.IsNotExist(err) {
			t.Errorf("the emptied checkpoint is still there: %v", err)
		}
		requireRestored(t, dst, want)
	})
}
