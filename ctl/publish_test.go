package ctl_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/ctl"
)

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestSetup(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	r := runCtl(t, env, "", "setup")
	mustCode(t, r, ctl.ExitOK)
	for _, want := range []string{"stream INCIDENTS created", "stream INCIDENTS_DLQ created", "consumer incidentd on stream INCIDENTS created",
		"stream INCIDENTS_MAX_DELIVERIES created", "consumer incidentd on stream INCIDENTS_MAX_DELIVERIES created"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("setup output lacks %q:\n%s", want, r.out)
		}
	}
	r = runCtl(t, env, "", "setup")
	mustCode(t, r, ctl.ExitOK)
	if strings.Count(r.out, "unchanged") != 5 {
		t.Errorf("second setup should change nothing:\n%s", r.out)
	}
	cfgFile := t.TempDir() + "/c.toml"
	writeFile(t, cfgFile, "[consumer]\nmax_age = \"24h\"\nmax_deliver = 7\n")
	r = runCtl(t, env, "", "setup", "--config", cfgFile)
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "stream INCIDENTS updated: max_age 168h0m0s -> 24h0m0s") || !strings.Contains(r.out, "max_deliver 5 -> 7") {
		t.Errorf("update not reported:\n%s", r.out)
	}
}

func TestSetupMismatch(t *testing.T) {
	url := embeddedNATS(t)
	js := jsFor(t, url)
	sc := consumer.StreamConfig(config.Default().Consumer)
	sc.Storage = jetstream.MemoryStorage
	if _, err := js.CreateStream(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	r := runCtl(t, nil, "", "setup", "--nats-url", url)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "has storage Memory, want File") {
		t.Errorf("mismatch not named: %s", r.err)
	}
}

func TestPublishGenerate(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	r := runCtl(t, env, "", "publish", "--generate", "2000", "--duplicates", "0.3", "--seed", "3", "--max-pending", "64")
	mustCode(t, r, ctl.ExitOK)
	js := jsFor(t, url)
	got := streamMsgs(t, js, "INCIDENTS")
	// About 15 % re-send an earlier event with its id: JetStream drops them
	// by Nats-Msg-Id.
	if got < 1550 || got > 1850 {
		t.Fatalf("stream holds %d messages of 2000 with ~15%% same-id repeats", got)
	}
	want := fmt.Sprintf("published 2000 events: 2000 acked, %d dropped by JetStream", 2000-got)
	if !strings.Contains(r.out, want) {
		t.Errorf("summary %q lacks %q", r.out, want)
	}
	// Subjects carry the source.
	s, _ := js.Stream(context.Background(), "INCIDENTS")
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter("incidents.events.llm-gateway"))
	if err != nil || len(info.State.Subjects) != 1 {
		t.Errorf("no messages on incidents.events.llm-gateway: %v %v", info.State.Subjects, err)
	}
}

const ndjson = `{"id":"e1","source":"llm-gateway","type":"Performance","severity":"P1","title":"slow"}
{"external_id":"e2","source":"guardrails","type":"Security","severity":"P0","title":"injection"}

not json at all
{"id":"e1","source":"llm-gateway","type":"Performance","severity":"P1","title":"slow"}
{"id":"e3","source":"llm gateway.eu","severity":"P9","title":"bad severity"}
`

func TestPublishNDJSON(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	js := jsFor(t, url)

	// As is: bad lines go out for the worker to dead-letter; the repeat of
	// e1 is dropped by JetStream.
	r := runCtl(t, env, ndjson, "publish")
	mustCode(t, r, ctl.ExitOK)
	if n := streamMsgs(t, js, "INCIDENTS"); n != 4 {
		t.Fatalf("stream holds %d, want 4 (e1, e2, the bad line, e3)", n)
	}
	s, _ := js.Stream(context.Background(), "INCIDENTS")
	info, _ := s.Info(context.Background(), jetstream.WithSubjectFilter("incidents.events.>"))
	for _, subj := range []string{"incidents.events.llm-gateway", "incidents.events.guardrails", "incidents.events.unknown", "incidents.events.llm_gateway_eu"} {
		if info.State.Subjects[subj] == 0 {
			t.Errorf("nothing on %s: %v", subj, info.State.Subjects)
		}
	}

	// --validate skips and reports the bad lines and exits 1.
	file := t.TempDir() + "/events.ndjson"
	writeFile(t, file, strings.ReplaceAll(ndjson, `"e`, `"v`))
	r = runCtl(t, env, "", "publish", "--validate", "-f", file)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "line 4:") || !strings.Contains(r.err, "line 6:") || !strings.Contains(r.err, "2 invalid lines skipped") {
		t.Errorf("invalid lines not reported: %s", r.err)
	}
	if n := streamMsgs(t, js, "INCIDENTS"); n != 6 {
		t.Fatalf("stream holds %d, want 6 (v1 and v2 added)", n)
	}

	// An event time two hours ahead is beyond a clock skew of 1h, not
	// beyond a wider one (nor the default: no bound).
	ahead := `{"id":"w1","source":"s","title":"t","occurred_at":"` + time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339) + `"}` + "\n"
	writeFile(t, file, ahead)
	r = runCtl(t, env, "", "publish", "--validate", "--max-clock-skew", "1h", "-f", file)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "line 1: incident: invalid_field") || !strings.Contains(r.err, "clock skew") {
		t.Errorf("future event time not reported: %s", r.err)
	}
	mustCode(t, runCtl(t, env, "", "publish", "--validate", "--max-clock-skew", "3h", "-f", file), ctl.ExitOK)
	if n := streamMsgs(t, js, "INCIDENTS"); n != 7 {
		t.Fatalf("stream holds %d, want 7 (w1 added once)", n)
	}
}

// TestPublishNoStream: on a subject no stream listens on, nothing is
// acked; the run stops once JetStream says so instead of sending every
// event, and it names the subject, in the README's words, once, whether
// the run stopped at it or every event was sent before the acks came.
func TestPublishNoStream(t *testing.T) {
	url := embeddedNATS(t) // no stream: nothing acks
	env := map[string]string{"NATS_URL": url}
	file := filepath.Join(t.TempDir(), "one.ndjson")
	writeFile(t, file, `{"id":"n1","source":"llm-gateway","title":"t"}`+"\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--generate", "20000"}, "incidentctl: publish: no stream: no JetStream stream listens on incidents.events."},
		{[]string{"--generate", "1"}, "incidentctl: publish: no stream: no JetStream stream listens on incidents.events."},
		{[]string{"--generate", "5", "--subject", "nostream.{source}"}, "incidentctl: publish: no stream: no JetStream stream listens on nostream."},
		{[]string{"-f", file}, "incidentctl: publish: no stream: no JetStream stream listens on incidents.events.llm-gateway (check --subject"},
	}
	for _, c := range cases {
		r := runCtl(t, env, "", append([]string{"publish"}, c.args...)...)
		mustCode(t, r, ctl.ExitError)
		if !strings.HasPrefix(r.err, c.want) || strings.Count(r.err, "no JetStream stream listens") != 1 ||
			strings.Contains(r.err, "no response from stream") || !strings.Contains(r.err, "sent and not acked") {
			t.Errorf("publish %v: stderr %q, want it to start %q and name the subjects once", c.args, r.err, c.want)
		}
	}
	r := runCtl(t, env, "", "publish", "--generate", "20000")
	var sent int
	if _, err := fmt.Sscanf(r.out, "published %d events", &sent); err != nil || sent >= 20000 {
		t.Errorf("summary %q: want fewer than the 20000 events sent (the run stopped early)", r.out)
	}
}

// TestPublishSubjectTemplate: a --subject no event can be published on is a
// usage error, found before connecting.
func TestPublishSubjectTemplate(t *testing.T) {
	for _, subj := range []string{"", "incidents.events.{type}", "incidents.events.{source}.>", "incidents..{source}", "incidents.*", "a b.{source}"} {
		r := runCtl(t, nil, "", "publish", "--generate", "1", "--nats-url", "nats://127.0.0.1:1", "--subject", subj)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, "--subject") {
			t.Errorf("--subject %q: stderr %q", subj, r.err)
		}
	}
}

// TestPublishBadFlags: values publish cannot mean are usage errors (exit
// 2), found before connecting; an input that cannot be read fails without
// a summary.
func TestPublishBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--generate", "-3"}, "--generate -3: must be at least 1"},
		{[]string{"--generate", "0"}, "--generate 0: must be at least 1"},
		{[]string{"--generate", "5", "--duplicates", "2"}, "--duplicates 2: a share"},
		{[]string{"--generate", "5", "--duplicates", "-0.1"}, "--duplicates -0.1: a share"},
		{[]string{"--generate", "5", "--ack-ratio", "-0.5"}, "--ack-ratio -0.5: a share"},
		{[]string{"--generate", "5", "--resolve-ratio", "1.5"}, "--resolve-ratio 1.5: a share"},
		{[]string{"--generate", "5", "--ack-ratio", "0.6", "--resolve-ratio", "0.6"}, "add up to 1 at most"},
		{[]string{"--generate", "5", "--ack-ratio", "0.4", "--resolve-ratio", "0.4"}, "--duplicates 0.3 is 1.1"},
		{[]string{"--generate", "5", "-f", "events.ndjson"}, "-f events.ndjson and --generate"},
		{[]string{"--max-pending", "0"}, "--max-pending must be at least 1"},
		{[]string{"--retry-for", "-1s"}, "--retry-for -1s: must be 0 (no retries) or more"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCtl(t, nil, "", append([]string{"publish", "--nats-url", "nats://127.0.0.1:1"}, c.args...)...)
			mustCode(t, r, ctl.ExitUsage)
			if !strings.Contains(r.err, "incidentctl: usage: ") || !strings.Contains(r.err, c.want) {
				t.Errorf("stderr %q: want %q", r.err, c.want)
			}
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
		})
	}
	// The shares may add up to 1 exactly.
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	mustCode(t, runCtl(t, env, "", "publish", "--generate", "20", "--ack-ratio", "0.3", "--resolve-ratio", "0.4", "--duplicates", "0.3"), ctl.ExitOK)

	// A file that cannot be opened: exit 1, no summary, nothing connected.
	r := runCtl(t, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "", "publish", "-f", t.TempDir()+"/missing.ndjson")
	mustCode(t, r, ctl.ExitError)
	if r.out != "" || !strings.Contains(r.err, "missing.ndjson: no such file") || strings.Contains(r.err, "nats") {
		t.Errorf("stdout %q, stderr %q: want only the open error", r.out, r.err)
	}
}

// TestPublishValidateTakesConfigLimits: with --config, --validate checks
// the worker's [consumer] limits of that file unless a flag overrides one.
func TestPublishValidateTakesConfigLimits(t *testing.T) {
	url := embeddedNATS(t)
	mustCode(t, runCtl(t, map[string]string{"NATS_URL": url}, "", "setup"), ctl.ExitOK)
	dir := t.TempDir()
	cfgFile := dir + "/incidentd.toml"
	writeFile(t, cfgFile, "[nats]\nurl = \""+url+"\"\n[consumer]\nmax_event_bytes = 300\n")
	file := dir + "/events.ndjson"
	writeFile(t, file, `{"id":"big-1","source":"s","title":"`+strings.Repeat("t", 400)+`"}`+"\n")
	r := runCtl(t, nil, "", "publish", "--validate", "--config", cfgFile, "-f", file)
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "line 1: incident: too_large") {
		t.Errorf("the file's max_event_bytes not applied: %s", r.err)
	}
	mustCode(t, runCtl(t, nil, "", "publish", "--validate", "--config", cfgFile, "--max-event-bytes", "1000", "-f", file), ctl.ExitOK)
}

// TestPublishOneSummary: publish prints one summary, on stdout (singular
// for one event); a plain stderr (no terminal) carries no second summary.
func TestPublishOneSummary(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	r := runCtl(t, env, `{"id":"a","source":"s","title":"x"}`+"\n", "publish")
	mustCode(t, r, ctl.ExitOK)
	want := "published 1 event: 1 acked, 0 dropped by JetStream as duplicates (Nats-Msg-Id), 0 failed\n"
	if r.out != want {
		t.Errorf("stdout %q, want %q", r.out, want)
	}
	if strings.Contains(r.err, "published") {
		t.Errorf("stderr repeats the summary: %q", r.err)
	}
}

// TestPublishStopped: a publish run stopped midway (Ctrl-C, SIGTERM) exits
// 1 and says what was not sent: for --generate how many events, for NDJSON
// the line to go on from; the summary counts what was.
func TestPublishStopped(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	const n = 2_000_000
	var lines strings.Builder
	for i := range n / 10 {
		fmt.Fprintf(&lines, `{"id":"e%d","source":"s","title":"x"}`+"\n", i)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"generate", "", []string{"publish", "--generate", fmt.Sprint(n)}, "publish stopped (context canceled): "},
		{"ndjson", lines.String(), []string{"publish"}, "publish stopped (context canceled) before line "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			o := ctl.IO{In: strings.NewReader(tc.stdin), Out: &out, Err: &errb, Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			js := jsFor(t, url)
			s, err := js.Stream(ctx, "INCIDENTS")
			if err != nil {
				t.Fatal(err)
			}
			before := s.CachedInfo().State.Msgs
			go func() { // stop once some of the run is in the stream
				for {
					info, err := s.Info(ctx)
					if err != nil || info.State.Msgs > before+1000 {
						cancel()
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			code := ctl.Run(ctx, tc.args, o)
			if code != ctl.ExitError {
				t.Fatalf("exit %d, want %d; stderr %s", code, ctl.ExitError, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("stderr %q lacks %q", errb.String(), tc.want)
			}
			var sent, acked, dups, failed int
			if _, err := fmt.Sscanf(out.String(), "published %d events: %d acked, %d dropped by JetStream as duplicates (Nats-Msg-Id), %d failed", &sent, &acked, &dups, &failed); err != nil {
				t.Fatalf("summary %q: %v", out.String(), err)
			}
			if sent == 0 || acked+failed != sent || dups > acked {
				t.Errorf("summary %q does not add up", out.String())
			}
			if tc.name == "generate" {
				var unsent int
				if _, err := fmt.Sscanf(errb.String()[strings.Index(errb.String(), tc.want)+len(tc.want):], "%d of the", &unsent); err != nil || sent+unsent != n {
					t.Errorf("sent %d + not sent %d (%v), want %d: %s", sent, unsent, err, n, errb.String())
				}
			} else {
				var line int
				if _, err := fmt.Sscanf(errb.String()[strings.Index(errb.String(), tc.want)+len(tc.want):], "%d:", &line); err != nil || line != sent+1 {
					t.Errorf("stopped before line %d (%v) after %d sent, want line %d: %s", line, err, sent, sent+1, errb.String())
				}
			}
		})
	}
}
