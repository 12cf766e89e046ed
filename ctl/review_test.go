package ctl_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// TestNotAnAPI: a 404 that is not the API's "no such incident" (a path
// before /api/v1, another server) fails with exit 1 saying the URL does not
// look like an incidentd API, for every command that reads a worker; only
// an unknown id is exit 3.
func TestNotAnAPI(t *testing.T) {
	a := startWorker(t)
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	const id = "0193c5a2-7d1e-7a53-9b1e-5c2f0d7e8a41"
	for _, base := range []string{other.URL, a.HTTPURL() + "/x"} {
		for _, args := range [][]string{
			{"get", id}, {"list"}, {"count"}, {"export"}, {"verify"}, {"set-state", id, "Closed"},
		} {
			r := runCtl(t, nil, "", append(args, "--api-url", base)...)
			mustCode(t, r, ctl.ExitError)
			if !strings.Contains(r.err, "does not look like an incidentd API") || !strings.Contains(r.err, "hint: give the worker's base URL") {
				t.Errorf("%s on %s: stderr %q", args[0], base, r.err)
			}
		}
	}
	mustCode(t, runCtl(t, nil, "", "get", id, "--api-url", a.HTTPURL()), ctl.ExitNotFound)
	mustCode(t, runCtl(t, nil, "", "get", "", "--api-url", a.HTTPURL()), ctl.ExitUsage)
	// "." and ".." cannot be named in a URL path: the server's path
	// cleaning once redirected "." to the list, decoded as an incident.
	for _, args := range [][]string{{"get", "."}, {"get", ".."}, {"set-state", ".", "Closed"}} {
		r := runCtl(t, nil, "", append(args, "--api-url", a.HTTPURL())...)
		mustCode(t, r, ctl.ExitError)
		if !strings.Contains(r.err, "cannot be named in a URL path") {
			t.Errorf("%v: stderr %q", args, r.err)
		}
	}
}

// TestIDAnyCase: get and set-state find a UUID id given in upper case, in
// a store and through the API.
func TestIDAnyCase(t *testing.T) {
	dir := filledPebble(t, 50)
	s := openPebble(t, dir)
	all := allIncidents(t, s)
	_ = s.Close()
	var in *incident.Incident
	for _, c := range all {
		if c.Active() {
			in = c
		}
	}
	upper := strings.ToUpper(in.ID)
	store := []string{"--state-path", dir, "-o", "json"}
	r := runCtl(t, nil, "", append([]string{"get", upper}, store...)...)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, `"id": "`+in.ID+`"`) {
		t.Errorf("get %s: %s", upper, r.out)
	}
	mustCode(t, runCtl(t, nil, "", append([]string{"set-state", upper, "Investigating"}, store...)...), ctl.ExitOK)

	a := startWorker(t)
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	ev := incident.Event{ID: "e-1", Source: "s", Title: "t", OccurredAt: time.Now().UTC()}
	folder := dedupe.NewFolder(15*time.Minute, func() string { return in.ID })
	if _, _, err := storage.Ingest(context.Background(), a.Store(), folder, []dedupe.Keyed{{Event: ev, Fingerprint: fp.Fingerprint(&ev)}}, time.Now); err != nil {
		t.Fatal(err)
	}
	mustCode(t, runCtl(t, nil, "", "get", upper, "--api-url", a.HTTPURL()), ctl.ExitOK)
}

// TestOutputFlagChecked: export writes JSON only, so -o table is a usage
// error naming json.
func TestOutputFlagChecked(t *testing.T) {
	dir := filledPebble(t, 20)
	r := runCtl(t, nil, "", "export", "--state-path", dir, "-o", "table")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "want json") {
		t.Errorf("stderr %q", r.err)
	}
	mustCode(t, runCtl(t, nil, "", "export", "--state-path", dir, "-o", "json"), ctl.ExitOK)
}

// TestNoCommand: no command is a usage error with the help on stderr;
// --help and help print it on stdout and succeed.
func TestNoCommand(t *testing.T) {
	for _, args := range [][]string{nil, {"--log-level", "debug"}} {
		r := runCtl(t, nil, "", args...)
		mustCode(t, r, ctl.ExitUsage)
		if r.out != "" || !strings.Contains(r.err, "Usage:") || !strings.Contains(r.err, "incidentctl: usage: no command given") {
			t.Errorf("%v: stdout %q, stderr %q", args, r.out, r.err)
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}} {
		r := runCtl(t, nil, "", args...)
		mustCode(t, r, ctl.ExitOK)
		if !strings.Contains(r.out, "Usage:") {
			t.Errorf("%v: stdout %q", args, r.out)
		}
	}
}

// TestBenchRateChecked: a negative --rate, or a latency phase of no
// length, is a usage error before anything starts.
func TestBenchRateChecked(t *testing.T) {
	for _, args := range [][]string{{"--rate", "-1"}, {"--rate", "10", "--duration", "0s"}, {"--duration", "-1s"}} {
		r := runCtl(t, nil, "", append([]string{"bench", "--events", "1"}, args...)...)
		mustCode(t, r, ctl.ExitUsage)
	}
}

// TestBenchFailureListsProblems: a bench that fails (publishes refused by
// a stream that is full) lists why in its problems. (A subject no stream
// listens on is a usage error before anything is published.)
func TestBenchFailureListsProblems(t *testing.T) {
	a := startWorker(t)
	ctx := context.Background()
	js := jsFor(t, a.NATSURL())
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NOPE", Subjects: []string{"nope.>"}, MaxMsgs: 1, Discard: jetstream.DiscardNew})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "nope", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	r := runCtl(t, nil, "", "bench", "--nats-url", a.NATSURL(), "--worker-url", a.HTTPURL(),
		"--subject", "nope.{source}", "--events", "50", "--rate", "0", "-o", "json")
	mustCode(t, r, ctl.ExitError)
	var res struct {
		Check struct {
			Problems []string `json:"problems"`
		} `json:"check"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || len(res.Check.Problems) == 0 {
		t.Fatalf("summary %q (%v): want the failure among the problems", r.out, err)
	}
	if p := res.Check.Problems[len(res.Check.Problems)-1]; !strings.Contains(r.err, p) || !strings.Contains(p, "publishes failed") {
		t.Errorf("problem %q: want the error, as stderr says it (%q)", p, r.err)
	}
}
