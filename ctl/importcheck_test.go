package ctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
)

// exported returns the JSON lines export of a filled Pebble store.
func exported(t *testing.T, n int) (lines []string, want []*incident.Incident) {
	t.Helper()
	src := filledPebble(t, n)
	s := openPebble(t, src)
	want = allIncidents(t, s)
	_ = s.Close()
	file := filepath.Join(t.TempDir(), "export.jsonl")
	mustCode(t, runCtl(t, nil, "", "export", "--out", file, "--state-backend", "pebble", "--state-path", src), ctl.ExitOK)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), want
}

// requireUntouched checks that a refused import or migration left its
// target as it was: never created, or empty.
func requireUntouched(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return
	}
	s := openPebble(t, dir)
	defer s.Close()
	n, err := s.Count(context.Background(), storage.Filter{})
	if err != nil || n != 0 {
		t.Fatalf("target holds %d incidents (%v), want none", n, err)
	}
}

// importValid imports a valid export into dir, which must then verify.
func importValid(t *testing.T, dir string, lines []string, want []*incident.Incident) {
	t.Helper()
	r := runCtl(t, nil, strings.Join(lines, "\n")+"\n", "import", "--to-backend", "pebble", "--to-path", dir)
	mustCode(t, r, ctl.ExitOK)
	mustCode(t, runCtl(t, nil, "", "verify", "--state-backend", "pebble", "--state-path", dir), ctl.ExitOK)
	d := openPebble(t, dir)
	sameIncidents(t, want, allIncidents(t, d))
	_ = d.Close()
}

// The black-box report: a record that is not an incident, and a file of
// events, were imported as broken incidents (exit 0), leaving a corrupt
// target that refused a retry. Now both are refused with exit 1, the line
// and every problem named, and nothing is written: the same target then
// takes a valid import.
func TestImportRefusesWhatIsNotIncidents(t *testing.T) {
	lines, want := exported(t, 400)
	dir := t.TempDir()

	bad := filepath.Join(dir, "badimp.jsonl")
	writeFile(t, bad, "{\"bad\":1}\n")
	dst := filepath.Join(dir, "imp3")
	r := runCtl(t, nil, "", "import", "-f", bad, "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitError)
	for _, s := range []string{
		"incidentctl: import: nothing written: 1 of 1 records are invalid\n",
		"  line 1: not an incident: id: empty; fingerprint: empty; title: empty; source: empty; type: missing (it would read as Unknown); severity: missing (it would read as P0); ",
		"first_seen: missing", "occurrence_count: 0, must be at least 1", "version: 0, must be at least 1",
	} {
		if !strings.Contains(r.err, s) {
			t.Errorf("stderr does not say %q:\n%s", s, r.err)
		}
	}
	if strings.Contains(r.err, "hint") || strings.Contains(r.out, "copied") {
		t.Errorf("unexpected output:\n%s%s", r.out, r.err)
	}
	requireUntouched(t, dst)
	importValid(t, dst, lines, want)

	// An NDJSON of events (the wrong file): 20 lines refused, ten listed,
	// and the hint.
	g := loadgen.New(loadgen.Config{Seed: 9, AckRatio: 0.1, ResolveRatio: 0.1})
	var ev strings.Builder
	for range 20 {
		ev.Write(loadgen.Marshal(g.Next()))
		ev.WriteByte('\n')
	}
	events := filepath.Join(dir, "events.ndjson")
	writeFile(t, events, ev.String())
	dst = filepath.Join(dir, "imp4")
	r = runCtl(t, nil, "", "import", "-f", events, "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitError)
	got := strings.Split(strings.TrimSuffix(r.err, "\n"), "\n")
	if len(got) != 1+10+2 || got[0] != "incidentctl: import: nothing written: 20 of 20 records are invalid" ||
		!strings.HasPrefix(got[1], "  line 1: not an incident: fingerprint: empty; ") ||
		!strings.HasPrefix(got[10], "  line 10: not an incident: ") || got[11] != "  and 10 more" ||
		got[12] != "  hint: this looks like an events file: publish it with `incidentctl publish`" {
		t.Fatalf("stderr:\n%s", r.err)
	}
	requireUntouched(t, dst)
	importValid(t, dst, lines, want)
}

// Invalid input on stdin writes nothing either; problems are named by the
// line each record starts on, and every kind of problem is reported, not
// only the first.
func TestImportStdinInvalidWritesNothing(t *testing.T) {
	lines, want := exported(t, 300)
	if len(lines) < 20 {
		t.Fatalf("only %d incidents", len(lines))
	}
	edit := func(i int, change func(m map[string]any)) {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, _ := json.Marshal(m)
		lines[i] = string(b)
	}
	orig := append([]string(nil), lines...)
	edit(4, func(m map[string]any) { delete(m, "title") })                           // line 5
	edit(6, func(m map[string]any) { m["severity"] = "P9" })                         // line 7
	edit(8, func(m map[string]any) { delete(m, "state"); m["fingerprint"] = "abc" }) // line 9
	lines[11] = orig[2]                                                              // line 12 repeats line 3's id
	edit(13, func(m map[string]any) { m["id"] = "." })                               // line 14: no API path can name it
	in := strings.Join(lines, "\n") + "\n"
	dst := filepath.Join(t.TempDir(), "pebble")
	r := runCtl(t, nil, in, "import", "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitError)
	var id3 struct{ ID string }
	_ = json.Unmarshal([]byte(orig[2]), &id3)
	for _, s := range []string{
		fmt.Sprintf("nothing written: 5 of %d records are invalid\n", len(lines)),
		"\n  line 5: not an incident: title: empty\n",
		"\n  line 7: not an incident: severity: unknown severity \"P9\" (want P0..P4 or critical, high, medium, low, info)\n",
		"\n  line 9: not an incident: fingerprint: \"abc\" is not v1: and 32 lower-case hex digits, as the worker makes them; state: missing (it would read as Detected)\n",
		fmt.Sprintf("\n  line 12: id %q again (first on line 3)", id3.ID),
		"\n  line 14: id \".\" cannot be named in an API path",
	} {
		if !strings.Contains(r.err, s) {
			t.Errorf("stderr does not say %q:\n%s", s, r.err)
		}
	}
	requireUntouched(t, dst)
	importValid(t, dst, orig, want)
}

// The array form names lines too, wherever the elements start.
func TestImportArrayNamesLines(t *testing.T) {
	lines, _ := exported(t, 50)
	var b strings.Builder
	b.WriteString("[\n")
	for i, l := range lines[:3] {
		if i == 1 {
			l = `{"id": "x",` + "\n" + ` "title": "t"}`
		}
		b.WriteString(l + ",\n")
	}
	b.WriteString("\n  42\n]\n")
	dst := filepath.Join(t.TempDir(), "pebble")
	r := runCtl(t, nil, b.String(), "import", "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "nothing written: 2 of 4 records are invalid\n  line 3: not an incident: fingerprint: empty; source: empty; ") ||
		!strings.HasSuffix(r.err, "\n  line 7: not an incident: a JSON number, not an object\n") {
		t.Fatalf("stderr:\n%s", r.err)
	}
	requireUntouched(t, dst)
}

// Two active incidents of one identity, or an active one that is not its
// identity's newest, would leave the store with two open incidents or a
// pointer at a resolved one: refused before writing.
func TestImportRefusesTwoActiveOfOneIdentity(t *testing.T) {
	lines, _ := exported(t, 300)
	byFP := map[string][]int{}
	var recs []map[string]any
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
		byFP[m["fingerprint"].(string)] = append(byFP[m["fingerprint"].(string)], i)
	}
	// An identity with an older resolved incident: make that one active.
	older := -1
	for _, idx := range byFP {
		for _, i := range idx {
			if recs[i]["reopen_of"] != nil && older < 0 {
				for _, j := range idx {
					if recs[j]["id"] == recs[i]["reopen_of"] {
						older = j
					}
				}
			}
		}
	}
	if older < 0 {
		t.Fatal("no reopened identity in the fixture")
	}
	m := recs[older]
	m["state"] = "Investigating"
	delete(m, "resolved_at")
	delete(m, "resolved_by")
	b, _ := json.Marshal(m)
	lines[older] = string(b)
	dst := filepath.Join(t.TempDir(), "pebble")
	r := runCtl(t, nil, strings.Join(lines, "\n"), "import", "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitError)
	want := fmt.Sprintf("\n  line %d: active (Investigating), but ", older+1)
	if !strings.Contains(r.err, want) || !strings.Contains(r.err, "is the newest incident of its fingerprint: only an identity's newest incident may be active") {
		t.Fatalf("stderr does not say %q:\n%s", want, r.err)
	}
	requireUntouched(t, dst)
}

// migrate checks the whole source (it holds it in memory) before opening
// the target: a store with an invalid record is refused, the record named
// by id, and the target is not written.
func TestMigrateRefusesInvalidSource(t *testing.T) {
	src := filledPebble(t, 300)
	s := openPebble(t, src)
	fp := "v1:00000000000000000000000000000bad"
	broken := &incident.Incident{ID: "broken-1", Fingerprint: fp, Source: "s", State: incident.Resolved,
		FirstSeen: loadgen.DefaultConfig().Start, LastSeen: loadgen.DefaultConfig().Start,
		CreatedAt: loadgen.DefaultConfig().Start, UpdatedAt: loadgen.DefaultConfig().Start, OccurrenceCount: 1, Version: 1}
	if err := s.Apply(context.Background(), storage.Batch{Incidents: []*incident.Incident{broken}, At: broken.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	total, err := s.Count(context.Background(), storage.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	dst := filepath.Join(t.TempDir(), "migrated")
	r := runCtl(t, nil, "", "migrate", "--from-backend", "pebble", "--from-path", src, "--to-backend", "pebble", "--to-path", dst)
	mustCode(t, r, ctl.ExitError)
	want := fmt.Sprintf("incidentctl: migrate: nothing written: 1 of %d source incidents are invalid\n", total) +
		"  incident \"broken-1\": not an incident: title: empty; resolved_at: missing: the state is Resolved; resolved_by: missing: the state is Resolved\n"
	if r.err != want {
		t.Fatalf("stderr %q, want %q", r.err, want)
	}
	requireUntouched(t, dst)
}
