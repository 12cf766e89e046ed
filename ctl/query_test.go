package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// startWorker runs an in-process worker (embedded NATS, memory store) and
// returns it with its API URL.
func startWorker(t *testing.T) *app.App {
	t.Helper()
	return startWorkerWith(t, nil)
}

// startWorkerWith is startWorker with the configuration changed by change
// (nil: none).
func startWorkerWith(t *testing.T, change func(*config.Config)) *app.App {
	t.Helper()
	cfg := config.Default()
	cfg.State.Backend = config.BackendMemory
	cfg.NATS.EmbeddedListen = "127.0.0.1:0"
	cfg.NATS.EmbeddedStoreDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	if change != nil {
		change(&cfg)
	}
	a, _ := runApp(t, cfg)
	waitReady(t, a)
	return a
}

// drained waits until the worker's consumer has delivered and acked the
// whole stream. Its pending count alone does not say so: nats-server
// tells the consumer of a message only after the PubAck.
func drained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	waitFor(t, "the worker to drain the stream", func() bool {
		s, err := js.Stream(context.Background(), "INCIDENTS")
		if err != nil {
			return false
		}
		c, err := js.Consumer(context.Background(), "INCIDENTS", "incidentd")
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		last := s.CachedInfo().State.LastSeq
		return err == nil && last > 0 && info.Delivered.Stream >= last && info.NumPending == 0 && info.NumAckPending == 0
	})
}

func TestQueryThroughAPI(t *testing.T) {
	a := startWorker(t)
	env := map[string]string{"NATS_URL": a.NATSURL(), "INCIDENTD_API_URL": a.HTTPURL()}
	mustCode(t, runCtl(t, env, "", "publish", "--generate", "600", "--ack-ratio", "0.05", "--resolve-ratio", "0.1"), ctl.ExitOK)
	drained(t, jsFor(t, a.NATSURL()))
	checkQueries(t, env, allIncidents(t, a.Store()))

	// get of an unknown id is exit code 3, saying "not found" once.
	r := runCtl(t, env, "", "get", "no-such-id")
	mustCode(t, r, ctl.ExitNotFound)
	if !strings.Contains(r.err, `get: incident "no-such-id" not found`) || strings.Count(r.err, "not found") != 1 {
		t.Errorf("get of an unknown id: %q, want \"not found\" once", r.err)
	}
	// The API's largest page.
	r = runCtl(t, env, "", "list", "--limit", "1000", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	// A bad filter value is a usage error naming the parameter.
	r = runCtl(t, env, "", "list", "--severity", "P9")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "parameter severity") {
		t.Errorf("bad severity not named: %s", r.err)
	}
}

func TestQueryStore(t *testing.T) {
	dir := filledPebble(t, 1500)
	env := map[string]string{}
	args := []string{"--state-backend", "pebble", "--state-path", dir}
	// Same answers as the store itself (opened again for comparison).
	s := openPebble(t, dir)
	want := allIncidents(t, s)
	_ = s.Close()
	r := runCtl(t, env, "", append([]string{"list", "-o", "json", "--limit", "0"}, args...)...)
	mustCode(t, r, ctl.ExitOK)
	var resp api.ListResponse
	if err := json.Unmarshal([]byte(r.out), &resp); err != nil {
		t.Fatal(err)
	}
	if int(resp.Total) != len(want) || len(resp.Incidents) != len(want) {
		t.Fatalf("list: %d of %d, store has %d", len(resp.Incidents), resp.Total, len(want))
	}
	for i := range want {
		if resp.Incidents[i].ID != want[i].ID {
			t.Fatalf("list[%d] = %s, store order has %s", i, resp.Incidents[i].ID, want[i].ID)
		}
	}
	// STATE_* variables name the store like the flags.
	env = map[string]string{"STATE_BACKEND": "pebble", "STATE_PATH": dir}
	// An empty config file, not /dev/null: on some machines /dev/null is a
	// regular file other processes have written to.
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCtl(t, env, "", "count", "--config", empty, "--active", "false", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	var c map[string]int64
	_ = json.Unmarshal([]byte(r.out), &c)
	inactive := 0
	for _, in := range want {
		if !in.Active() {
			inactive++
		}
	}
	if c["count"] != int64(inactive) || inactive == 0 {
		t.Errorf("count --active false = %v, want %d", c, inactive)
	}
	checkQueries(t, nil, want, args...)
	// get as a table.
	r = runCtl(t, nil, "", append([]string{"get", want[0].ID, "-o", "table"}, args...)...)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, want[0].Title) || !strings.Contains(r.out, "fingerprint") {
		t.Errorf("get table lacks the title:\n%s", r.out)
	}
	r = runCtl(t, nil, "", append([]string{"get", "nope"}, args...)...)
	mustCode(t, r, ctl.ExitNotFound)
	if !strings.Contains(r.err, `get: incident "nope" not found`) || strings.Count(r.err, "not found") != 1 {
		t.Errorf("get of an unknown id: %q, want \"not found\" once", r.err)
	}
}

// --limit is checked before anything is asked: 1 to 1000 through the API,
// 0 (all) or more reading a store.
func TestLimitFlag(t *testing.T) {
	viaAPI := []string{"--api-url", "http://127.0.0.1:1"} // never reached: the flags are wrong
	store := []string{"--state-backend", "pebble", "--state-path", filledPebble(t, 5)}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{append([]string{"list", "--limit", "2000"}, viaAPI...), ctl.ExitUsage, "--limit 2000: through the API it must be 1 to 1000"},
		{append([]string{"count", "--fingerprint", ""}, store...), ctl.ExitUsage, "empty value"},
		{append([]string{"list", "--severity", ""}, viaAPI...), ctl.ExitUsage, "empty value"},
		// The API's words for an empty item (?severity=P0,,P1).
		{append([]string{"list", "--severity", "P0,,P1"}, viaAPI...), ctl.ExitUsage, `parameter severity: empty item in "P0,,P1" (a comma with nothing before or after it)`},
		{append([]string{"count", "--state", "Detected,"}, store...), ctl.ExitUsage, `parameter state: empty item in "Detected,"`},
		{append([]string{"count", "--severity", "P0,P1", "--severity", "P2"}, store...), ctl.ExitOK, ""},
		{append([]string{"list", "--limit", "0"}, viaAPI...), ctl.ExitUsage, "--limit 0: through the API it must be 1 to 1000"},
		{append([]string{"list", "--limit", "-1"}, viaAPI...), ctl.ExitUsage, "--limit -1: must not be negative"},
		{append([]string{"list", "--offset", "-1"}, store...), ctl.ExitUsage, "--offset -1: must not be negative"},
		{append([]string{"list", "--limit", "-1"}, store...), ctl.ExitUsage, "--limit -1: must not be negative"},
		{append([]string{"list", "--limit", "0"}, store...), ctl.ExitOK, ""},
		{append([]string{"list", "--limit", "2000"}, store...), ctl.ExitOK, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCtl(t, nil, "", append(c.args, "-o", "json")...)
			mustCode(t, r, c.code)
			if !strings.Contains(r.err, c.msg) {
				t.Fatalf("stderr %q, want %q", r.err, c.msg)
			}
		})
	}
}

// checkQueries compares get, list and count (with extra, the flags naming
// a store, if any) with all, the store's incidents, for a few filters.
func checkQueries(t *testing.T, env map[string]string, all []*incident.Incident, extra ...string) {
	t.Helper()
	if len(all) == 0 {
		t.Fatal("no incidents")
	}
	history, other := identities(all)
	cases := []struct {
		args []string
		f    storage.Filter
	}{
		{nil, storage.Filter{}},
		{[]string{"--severity", "P0,P1"}, storage.Filter{Severities: []incident.Severity{incident.P0, incident.P1}}},
		{[]string{"--source", "llm-gateway", "--source", "guardrails", "--active", "true"}, storage.Filter{Sources: []string{"llm-gateway", "guardrails"}, Active: ptr(true)}},
		{[]string{"--state", "Resolved"}, storage.Filter{States: []incident.State{incident.Resolved}}},
		{[]string{"--type", "Security,Data"}, storage.Filter{Types: []incident.Type{incident.Security, incident.Data}}},
		{[]string{"--fingerprint", history}, storage.Filter{Fingerprints: []string{history}}},
		{[]string{"--fingerprint", history + "," + other, "--active", "false"}, storage.Filter{Fingerprints: []string{history, other}, Active: ptr(false)}},
	}
	run := func(args ...string) result { return runCtl(t, env, "", append(args, extra...)...) }
	for _, c := range cases {
		want := 0
		for _, in := range all {
			if c.f.Match(in) {
				want++
			}
		}
		r := run(append([]string{"count"}, c.args...)...)
		mustCode(t, r, ctl.ExitOK)
		if got := strings.TrimSpace(r.out); got != strconv.Itoa(want) && !strings.Contains(got, `"count": `+strconv.Itoa(want)) {
			t.Errorf("count %v = %s, want %d", c.args, got, want)
		}
		r = run(append([]string{"list", "-o", "json", "--limit", "7", "--offset", "2"}, c.args...)...)
		mustCode(t, r, ctl.ExitOK)
		var resp api.ListResponse
		if err := json.Unmarshal([]byte(r.out), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Total != int64(want) || len(resp.Incidents) != min(7, max(want-2, 0)) {
			t.Errorf("list %v: %d of %d, want %d", c.args, len(resp.Incidents), resp.Total, want)
		}
	}
	// One identity's history: every incident of it, reopens included,
	// newest first.
	r := run("list", "-o", "json", "--fingerprint", strings.ToUpper(history))
	mustCode(t, r, ctl.ExitOK)
	var resp api.ListResponse
	if err := json.Unmarshal([]byte(r.out), &resp); err != nil {
		t.Fatal(err)
	}
	var gotIDs, wantIDs []string
	for _, in := range resp.Incidents {
		gotIDs = append(gotIDs, in.ID)
	}
	for _, in := range all {
		if in.Fingerprint == history {
			wantIDs = append(wantIDs, in.ID)
		}
	}
	if !slices.Equal(gotIDs, wantIDs) || len(wantIDs) < 2 {
		t.Errorf("list --fingerprint %s = %v, want %v (two or more)", history, gotIDs, wantIDs)
	}
	r = run("count", "--fingerprint", "v1:abc")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "parameter fingerprint") {
		t.Errorf("bad fingerprint not named: %s", r.err)
	}
	r = run("list", "-o", "table", "--limit", "3")
	mustCode(t, r, ctl.ExitOK)
	if !strings.HasPrefix(r.out, "ID") || !strings.Contains(r.out, "3 of "+strconv.Itoa(len(all))) {
		t.Errorf("table:\n%s", r.out)
	}
	r = run("get", all[0].ID, "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	var got incident.Incident
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || got.ID != all[0].ID || got.Version != all[0].Version {
		t.Errorf("get: %+v %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }

// identities returns the fingerprint with the most incidents (reopens) and
// another one.
func identities(all []*incident.Incident) (history, other string) {
	n := map[string]int{}
	for _, in := range all {
		n[in.Fingerprint]++
	}
	for _, in := range all {
		if history == "" || n[in.Fingerprint] > n[history] {
			history = in.Fingerprint
		}
	}
	for _, in := range all {
		if in.Fingerprint != history {
			return history, in.Fingerprint
		}
	}
	return history, history
}

func allIncidents(t *testing.T, s storage.Store) []*incident.Incident {
	t.Helper()
	all, err := s.List(context.Background(), storage.Filter{}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// --since and --until take an RFC 3339 time (lower-case "t" and "z" too)
// or a duration back from now; anything else is a usage error saying so.
func TestSinceFlag(t *testing.T) {
	store := []string{"--state-backend", "pebble", "--state-path", filledPebble(t, 5)}
	for _, v := range []string{"90m", "2026-01-02T15:04:05Z", "2026-01-02t15:04:05z"} {
		mustCode(t, runCtl(t, nil, "", append([]string{"count", "--since", v}, store...)...), ctl.ExitOK)
	}
	r := runCtl(t, nil, "", append([]string{"list", "--since", "1x"}, store...)...)
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "nor a duration") {
		t.Errorf("--since 1x: %q should say a duration works too", r.err)
	}
	// A negative duration is a bound ahead of now: refused, not an empty answer.
	r = runCtl(t, nil, "", append([]string{"count", "--since", "-5m"}, store...)...)
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "not -5m") {
		t.Errorf("--since -5m: %q", r.err)
	}
	// Not RFC 3339: an offset past 23:59.
	mustCode(t, runCtl(t, nil, "", append([]string{"count", "--since", "2026-11-28T03:00:00+24:00"}, store...)...), ctl.ExitUsage)
}

// TestMissingStoreIsAnError: reading a Pebble path that does not exist (or
// an empty directory, or one with only lost+found) fails, naming the path, instead of creating an empty
// store and answering "nothing" (verify once said "ok").
func TestMissingStoreIsAnError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo")
	empty := t.TempDir()
	volume := t.TempDir() // a fresh volume's root: only lost+found
	if err := os.Mkdir(filepath.Join(volume, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{missing, empty, volume} {
		for _, args := range [][]string{{"count"}, {"list"}, {"get", "x"}, {"verify"}, {"export"}} {
			r := runCtl(t, nil, "", append(args, "--state-backend", "pebble", "--state-path", path)...)
			mustCode(t, r, ctl.ExitError)
			if !strings.Contains(r.err, "no Pebble store at "+path) {
				t.Errorf("%v on %s: %q", args, path, r.err)
			}
		}
		r := runCtl(t, nil, "", "migrate", "--from-backend", "pebble", "--from-path", path, "--to-backend", "memory")
		mustCode(t, r, ctl.ExitError)
		if !strings.Contains(r.err, "no Pebble store at "+path) || (path == missing && !strings.Contains(r.err, "check --from-path")) {
			t.Errorf("migrate from %s: %q", path, r.err)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading created %s: %v", missing, err)
	}
	if entries, _ := os.ReadDir(volume); len(entries) != 1 {
		t.Errorf("reading wrote into %s: %v", volume, entries)
	}
}

// TestMemoryStoreIsNotRead: a memory store lives inside its worker; a new
// one is empty, so reading it is a usage error pointing at the API.
func TestMemoryStoreIsNotRead(t *testing.T) {
	for _, args := range [][]string{{"count"}, {"get", "x"}, {"set-state", "x", "Closed"}} {
		r := runCtl(t, nil, "", append(args, "--state-backend", "memory")...)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, "--api-url") {
			t.Errorf("%v on memory: %q", args, r.err)
		}
	}
	r := runCtl(t, nil, "", "migrate", "--from-backend", "memory", "--to-backend", "memory")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "--from-api-url") {
		t.Errorf("migrate from memory: %q", r.err)
	}
}

// TestMemoryStoreIsNotWritten: import or migrate into a memory store would
// vanish with incidentctl; it is a usage error before anything is read.
func TestMemoryStoreIsNotWritten(t *testing.T) {
	file := filepath.Join(t.TempDir(), "in.jsonl")
	writeFile(t, file, "")
	memConfig := filepath.Join("..", "examples", "config-memory.toml")
	for _, args := range [][]string{
		{"import", "-f", file, "--to-backend", "memory"},
		{"import", "-f", file, "--to-config", memConfig},
		{"migrate", "--from-api-url", "http://127.0.0.1:1", "--to-backend", "memory"},
	} {
		r := runCtl(t, nil, "", args...)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, "would be gone when incidentctl exits") {
			t.Errorf("%v: %q", args, r.err)
		}
	}
}

// TestOneSource: an explicit --api-url together with a store (--state-*,
// --config) is a usage error, not the store silently winning; so is
// --from-api-url with a source store.
func TestOneSource(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"count", "--api-url", "http://127.0.0.1:1", "--state-path", dir},
		{"list", "--api-url", "http://127.0.0.1:1", "--state-backend", "pebble", "--state-path", dir},
		{"export", "--api-url", "http://127.0.0.1:1", "--config", filepath.Join("..", "examples", "config-pebble.toml")},
		{"set-state", "x", "Closed", "--api-url", "http://127.0.0.1:1", "--state-path", dir},
		{"migrate", "--from-api-url", "http://127.0.0.1:1", "--from-backend", "pebble", "--from-path", dir, "--to-backend", "pebble", "--to-path", t.TempDir()},
	} {
		r := runCtl(t, nil, "", args...)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, "name two sources; give one") {
			t.Errorf("%v: %q", args, r.err)
		}
	}
}

// TestGetTable: get's table shows late_count, reopen_of, last_value with
// its unit and the labels (sorted, one set to "" included) when the
// incident has them, and leaves them out when it does not; the times the
// JSON carries (created_at, updated_at, latest_event_at) are rows too.
func TestGetTable(t *testing.T) {
	dir := filledPebble(t, 1500)
	s := openPebble(t, dir)
	var reopened, plain *incident.Incident
	for _, in := range allIncidents(t, s) {
		switch {
		case in.ReopenOf != "" && reopened == nil:
			reopened = in
		case in.ReopenOf == "" && in.LateCount == 0 && plain == nil:
			plain = in
		}
	}
	if reopened == nil || plain == nil {
		t.Fatal("no reopened incident, or no plain one, in the store")
	}
	up := reopened.Clone()
	up.LateCount, up.Labels, up.Version = 2, map[string]string{"zone": "eu-1", "model": "gpt", "empty": ""}, up.Version+1
	v := 2140.5
	up.LastValue, up.Unit = &v, "ms"
	plain = plain.Clone()
	plain.Labels, plain.LastValue, plain.Unit, plain.Version = nil, nil, "", plain.Version+1
	if err := s.Apply(context.Background(), storage.Batch{Incidents: []*incident.Incident{up, plain}, At: up.UpdatedAt}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	get := func(id string) string {
		r := runCtl(t, nil, "", "get", id, "-o", "table", "--state-path", dir)
		mustCode(t, r, ctl.ExitOK)
		return r.out
	}
	var keys []string
	rows := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(get(up.ID)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		keys, rows[k] = append(keys, k), strings.TrimSpace(v)
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	want := map[string]string{"late_count": "2", "reopen_of": up.ReopenOf, "labels.empty": `""`, "labels.model": "gpt", "labels.zone": "eu-1",
		"last_value": "2140.5 ms", "created_at": rfc(up.CreatedAt), "updated_at": rfc(up.UpdatedAt),
		"latest_event_at": rfc(up.LatestEventAt), "latest_event_id": up.LatestEventID}
	for k, v := range want {
		if rows[k] != v {
			t.Errorf("get %s: row %s = %q, want %q (rows %v)", up.ID, k, rows[k], v, rows)
		}
	}
	if l := slices.Index(keys, "labels.empty"); l < 0 || l+3 > len(keys) || !slices.Equal(keys[l:l+3], []string{"labels.empty", "labels.model", "labels.zone"}) {
		t.Errorf("get %s: labels not in key order: %v", up.ID, keys)
	}
	out := get(plain.ID)
	for _, k := range []string{"labels.", "late_count", "reopen_of", "last_value", "unit"} {
		if strings.Contains(out, k) {
			t.Errorf("get %s: %q shown for an incident without it:\n%s", plain.ID, k, out)
		}
	}
}
