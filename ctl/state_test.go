package ctl_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// pickIncidents returns an active incident and a resolved one that a later
// incident of its identity reopened (not the newest of its identity).
func pickIncidents(t *testing.T, all []*incident.Incident) (active, reopened *incident.Incident) {
	t.Helper()
	byID := map[string]*incident.Incident{}
	for _, in := range all {
		byID[in.ID] = in
	}
	for _, in := range all {
		if active == nil && in.State == incident.Detected {
			active = in
		}
		if prev := byID[in.ReopenOf]; reopened == nil && prev != nil && prev.State == incident.Resolved {
			reopened = prev
		}
	}
	if active == nil || reopened == nil {
		t.Fatalf("fixture lacks an active (%v) or a reopened resolved incident (%v)", active, reopened)
	}
	return active, reopened
}

// checkSetState runs the set-state cases against whatever env and extra
// flags name (a worker's API or a store), then returns the two incidents'
// ids.
func checkSetState(t *testing.T, env map[string]string, all []*incident.Incident, extra ...string) (active, reopened *incident.Incident) {
	t.Helper()
	active, reopened = pickIncidents(t, all)
	run := func(args ...string) result { return runCtl(t, env, "", append(args, extra...)...) }

	r := run("set-state", active.ID, "investigating", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("set-state -o json: %v\n%s", err, r.out)
	}
	if got["state"] != "Investigating" || got["acknowledged_at"] == nil || got["version"] != float64(active.Version+1) {
		t.Fatalf("set-state Investigating: %v", got)
	}
	// The same state again: exit 0, nothing changed, said on stderr.
	r = run("set-state", active.ID, "Investigating", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.err, `incident "`+active.ID+`" is Investigating already: nothing changed`) || !strings.Contains(r.out, `"version": `) {
		t.Errorf("same state: stderr %q", r.err)
	}
	r = run("set-state", active.ID, "Resolved", "-o", "table")
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "Resolved") || !strings.Contains(r.out, "operator") {
		t.Errorf("set-state Resolved, table:\n%s", r.out)
	}
	// Refused by the lifecycle: exit 5, naming both states.
	r = run("set-state", active.ID, "Triaged")
	mustCode(t, r, ctl.ExitRefused)
	if !strings.Contains(r.err, `Resolved -> Triaged is not allowed`) {
		t.Errorf("refused: %q", r.err)
	}
	// Closing an older resolved incident of a reopened identity.
	r = run("set-state", reopened.ID, "closed", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || got["state"] != "Closed" || got["resolved_by"] != string(reopened.ResolvedBy) {
		t.Fatalf("close the reopened incident: %v %v (was resolved by %s)", got, err, reopened.ResolvedBy)
	}
	mustCode(t, run("set-state", reopened.ID, "Resolved"), ctl.ExitRefused)
	// Unknown id: exit 3.
	r = run("set-state", "no-such-id", "Closed")
	mustCode(t, r, ctl.ExitNotFound)
	if !strings.Contains(r.err, `set-state: incident "no-such-id" not found`) {
		t.Errorf("unknown id: %q", r.err)
	}
	// Usage: an unknown or forbidden state, a missing argument.
	for _, args := range [][]string{{"set-state", active.ID, "Bogus"}, {"set-state", active.ID, "Detected"}, {"set-state", active.ID}, {"set-state", active.ID, "Closed", "-o", "yaml"}} {
		r = run(args...)
		mustCode(t, r, ctl.ExitUsage)
	}
	if !strings.Contains(r.err, "yaml") {
		t.Errorf("bad output: %q", r.err)
	}
	return active, reopened
}

func TestSetStateThroughAPI(t *testing.T) {
	cfg := config.Default()
	cfg.State.Backend = config.BackendMemory
	cfg.NATS.EmbeddedListen = "127.0.0.1:0"
	cfg.NATS.EmbeddedStoreDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.AllowWrites = true
	obs, logs := observer.New(zapcore.InfoLevel)
	log := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, obs) })))
	a, err := app.New(cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "ready", func() bool {
		resp, err := http.Get(a.HTTPURL() + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	fillStore(t, a.Store(), 1500)
	env := map[string]string{"INCIDENTD_API_URL": a.HTTPURL()}
	active, reopened := checkSetState(t, env, allIncidents(t, a.Store()))

	// Stored as the API answered; the identity stays on its newest incident.
	s := a.Store()
	if in, err := s.Get(ctx, active.ID); err != nil || in.State != incident.Resolved || in.ResolvedBy != incident.ResolvedByOperator {
		t.Fatalf("stored %+v, %v", in, err)
	}
	snap, err := s.Lookup(ctx, []string{reopened.Fingerprint}, nil)
	if err != nil || snap.Latest[reopened.Fingerprint].ReopenOf == "" || snap.Latest[reopened.Fingerprint].ID == reopened.ID {
		t.Fatalf("identity after closing an older incident: %+v, %v", snap.Latest[reopened.Fingerprint], err)
	}
	// The worker's audit line tells incidentctl from other clients.
	changes := logs.FilterMessage("operator state change").All()
	if len(changes) == 0 {
		t.Fatal("no operator state change logged")
	}
	for _, e := range changes {
		if ua := e.ContextMap()["user_agent"]; ua != "incidentctl/"+app.Version {
			t.Errorf("operator state change logged with user_agent %q, want %q", ua, "incidentctl/"+app.Version)
		}
	}
	m := a.Metrics()
	if got := testutil.ToFloat64(m.IncidentsOperatorTransitions.WithLabelValues("Closed")); got != 1 {
		t.Errorf("operator transitions to Closed = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.IncidentsResolved.WithLabelValues("operator")); got != 1 {
		t.Errorf("resolved by operator = %v, want 1", got)
	}

	// A worker with writes off (the default): exit 1, saying how to enable them.
	off := startWorker(t)
	r := runCtl(t, map[string]string{"INCIDENTD_API_URL": off.HTTPURL()}, "", "set-state", active.ID, "Closed")
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "http.allow_writes = true") {
		t.Errorf("writes off: %q", r.err)
	}
}

func TestSetStatePebble(t *testing.T) {
	dir := filledPebble(t, 1500)
	s := openPebble(t, dir)
	all := allIncidents(t, s)
	_ = s.Close()
	args := []string{"--state-backend", "pebble", "--state-path", dir}
	active, reopened := checkSetState(t, nil, all, args...)

	s = openPebble(t, dir)
	ctx := context.Background()
	if in, err := s.Get(ctx, active.ID); err != nil || in.State != incident.Resolved || in.ResolvedBy != incident.ResolvedByOperator {
		t.Fatalf("stored %+v, %v", in, err)
	}
	if in, err := s.Get(ctx, reopened.ID); err != nil || in.State != incident.Closed {
		t.Fatalf("stored %+v, %v", in, err)
	}
	snap, err := s.Lookup(ctx, []string{reopened.Fingerprint}, nil)
	if err != nil || snap.Latest[reopened.Fingerprint].ID == reopened.ID {
		t.Fatalf("identity after closing an older incident: %+v, %v", snap.Latest[reopened.Fingerprint], err)
	}
	// While a process holds the directory: exit 1, pointing at the API.
	r := runCtl(t, nil, "", append([]string{"set-state", active.ID, "Closed"}, args...)...)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "--api-url (which needs http.allow_writes = true)") {
		t.Errorf("locked: %q", r.err)
	}
	_ = s.Close()
	verifyClean(t, args)
}

// TestSetStateRedis changes states in a Redis store while another process
// (here a store of this test: a worker) has it open, as the README allows.
func TestSetStateRedis(t *testing.T) {
	s, args := heldRedis(t)
	fillStore(t, s, 1500)
	active, reopened := checkSetState(t, nil, allIncidents(t, s), args...)
	ctx := context.Background()
	if in, err := s.Get(ctx, active.ID); err != nil || in.State != incident.Resolved || in.ResolvedBy != incident.ResolvedByOperator {
		t.Fatalf("stored %+v, %v", in, err)
	}
	for _, f := range []storage.Filter{{States: []incident.State{incident.Closed}}, {Active: ptr(false)}} {
		ins, err := s.List(ctx, f, storage.Page{})
		found := false
		for _, in := range ins {
			found = found || in.ID == reopened.ID
		}
		if err != nil || !found {
			t.Errorf("filter %+v does not find the closed incident: %v", f, err)
		}
	}
	verifyClean(t, args)
}

// verifyClean runs incidentctl verify on the store the flags name.
func verifyClean(t *testing.T, storeArgs []string) {
	t.Helper()
	mustCode(t, runCtl(t, nil, "", append([]string{"verify"}, storeArgs...)...), ctl.ExitOK)
}
