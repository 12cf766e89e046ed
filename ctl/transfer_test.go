package ctl_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// sameIncidents compares two stores' incidents field by field, versions
// aside (migration writes every incident at version 1).
func sameIncidents(t *testing.T, want, got []*incident.Incident) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d incidents, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := *want[i], *got[i]
		w.Version, g.Version = 0, 0
		wj, _ := json.Marshal(w)
		gj, _ := json.Marshal(g)
		if string(wj) != string(gj) {
			t.Fatalf("incident %d differs:\nwant %s\ngot  %s", i, wj, gj)
		}
	}
}

func TestExportImportVerify(t *testing.T) {
	src := filledPebble(t, 3000)
	s := openPebble(t, src)
	want := allIncidents(t, s)
	reopened := 0
	for _, in := range want {
		if in.ReopenOf != "" {
			reopened++
		}
	}
	_ = s.Close()
	if reopened == 0 {
		t.Fatal("fixture has no reopened incidents; the chain order is untested")
	}
	from := []string{"--state-backend", "pebble", "--state-path", src}
	mustCode(t, runCtl(t, nil, "", append([]string{"verify"}, from...)...), ctl.ExitOK)

	for _, array := range []bool{false, true} {
		file := t.TempDir() + "/export.json"
		args := append([]string{"export", "--out", file}, from...)
		if array {
			args = append(args, "--array")
		}
		mustCode(t, runCtl(t, nil, "", args...), ctl.ExitOK)
		b, _ := os.ReadFile(file)
		if array != strings.HasPrefix(string(b), "[") {
			t.Fatalf("array=%t export starts %.20q", array, b)
		}
		dst := t.TempDir() + "/pebble"
		r := runCtl(t, nil, "", "import", "-f", file, "--to-backend", "pebble", "--to-path", dst)
		mustCode(t, r, ctl.ExitOK)
		if !strings.Contains(r.out, "(0 relinked)") {
			t.Errorf("import relinked incidents: %s", r.out)
		}
		mustCode(t, runCtl(t, nil, "", "verify", "--state-backend", "pebble", "--state-path", dst), ctl.ExitOK)
		d := openPebble(t, dst)
		sameIncidents(t, want, allIncidents(t, d))
		// The newest incident of each identity is its open one again.
		for _, in := range want {
			if in.Active() {
				got, err := d.FindOpen(context.Background(), in.Fingerprint)
				if err != nil || got.ID != in.ID {
					t.Fatalf("FindOpen(%s) = %v, %v; want %s", in.Fingerprint, got, err, in.ID)
				}
			}
		}
		_ = d.Close()
		// Import refuses a non-empty target.
		r = runCtl(t, nil, "", "import", "-f", file, "--to-backend", "pebble", "--to-path", dst)
		mustCode(t, r, ctl.ExitError)
		if !strings.Contains(r.err, "not empty") {
			t.Errorf("non-empty target: %s", r.err)
		}
	}
}

func TestMigrateAndBackup(t *testing.T) {
	src, want := filledWithIncidents(t, 1500)
	dst := t.TempDir() + "/migrated"
	r := runCtl(t, nil, "", "migrate", "--from-backend", "pebble", "--from-path", src, "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitOK)
	d := openPebble(t, dst)
	sameIncidents(t, want, allIncidents(t, d))
	_ = d.Close()

	// A memory source is refused with a pointer to --from-api-url.
	r = runCtl(t, nil, "", "migrate", "--from-backend", "memory", "--to-backend", "pebble", "--to-path", t.TempDir())
	mustCode(t, r, ctl.ExitUsage)

	bk := t.TempDir() + "/backup"
	r = runCtl(t, nil, "", "backup", "--state-path", src, "--to", bk)
	mustCode(t, r, ctl.ExitOK)
	b := openPebble(t, bk)
	sameIncidents(t, want, allIncidents(t, b))
	_ = b.Close()
}

// TestMigrateFromAPI saves an in-memory worker's incidents into Pebble
// through its API (the guide's "in-memory to embedded store" migration).
func TestMigrateFromAPI(t *testing.T) {
	a := startWorker(t)
	env := map[string]string{"NATS_URL": a.NATSURL()}
	mustCode(t, runCtl(t, env, "", "publish", "--generate", "2500", "--resolve-ratio", "0.1"), ctl.ExitOK)
	drained(t, jsFor(t, a.NATSURL()))
	want := allIncidents(t, a.Store())
	if len(want) <= 1000 {
		t.Fatalf("want more than one API page, have %d incidents", len(want))
	}
	dst := t.TempDir() + "/pebble"
	r := runCtl(t, env, "", "migrate", "--from-api-url", a.HTTPURL(), "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitOK)
	mustCode(t, runCtl(t, env, "", "verify", "--api-url", a.HTTPURL()), ctl.ExitOK)
	d := openPebble(t, dst)
	sameIncidents(t, want, allIncidents(t, d))
	_ = d.Close()
}

// lying drops one incident from every filtered List: verify must notice.
type lying struct{ storage.Store }

func (l lying) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	all, err := l.Store.List(ctx, f, p)
	if err != nil || f.IsZero() || len(all) == 0 {
		return all, err
	}
	return all[1:], nil
}

func TestVerifyFindsInconsistency(t *testing.T) {
	src := filledPebble(t, 300)
	s := openPebble(t, src)
	defer s.Close()
	var out strings.Builder
	err := ctl.Verify(context.Background(), lying{s}, s, &out)
	if err == nil || !strings.Contains(out.String(), "FAIL index") {
		t.Fatalf("verify did not notice: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := ctl.Verify(context.Background(), s, s, &out); err != nil {
		t.Fatalf("verify of a sound store: %v\n%s", err, out.String())
	}
}
