package ctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
)

// dlqMsgs reads the dead letters with `dlq list -o json`.
func dlqMsgs(t *testing.T, url string) []ctlDeadLetter {
	t.Helper()
	r := runCtl(t, map[string]string{"NATS_URL": url}, "", "dlq", "list", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	var out []ctlDeadLetter
	dec := json.NewDecoder(strings.NewReader(r.out))
	for dec.More() {
		var d ctlDeadLetter
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("dlq list -o json: %v\n%s", err, r.out)
		}
		out = append(out, d)
	}
	return out
}

// ctlDeadLetter is a line of `dlq list -o json`, as a user's script reads it.
type ctlDeadLetter struct {
	Seq        uint64 `json:"seq"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
	Subject    string `json:"subject"`
	StreamSeq  uint64 `json:"stream_seq"`
	ReceivedAt string `json:"received_at"`
	Payload    string `json:"payload"`
}

// TestDLQListAndReplay: a worker dead-letters an event too large for its
// max_event_bytes and a line that is not JSON; `dlq list` shows both;
// after the limit is raised, `dlq replay --reason too_large` publishes the
// event again and the worker applies it, once however often it is
// replayed (the event has no id: the replay carries its first stream
// position as Nats-Msg-Id, the id the worker gave it), dated by the
// original's receipt (it has no occurred_at), not by the replay.
func TestDLQListAndReplay(t *testing.T) {
	cfg := config.Default()
	cfg.State.Backend, cfg.State.Path = config.BackendPebble, t.TempDir()
	cfg.NATS.EmbeddedListen, cfg.NATS.EmbeddedStoreDir = "127.0.0.1:0", t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Consumer.MaxEventBytes = 512
	cfg.Consumer.DuplicateWindow.Duration = time.Second
	a, stop := runApp(t, cfg)
	waitReady(t, a)
	url := a.NATSURL()
	js := jsFor(t, url)
	ctlRun := func(args ...string) result {
		t.Helper()
		return runCtl(t, map[string]string{"NATS_URL": url}, "", args...)
	}
	big := fmt.Sprintf(`{"source":"s","title":"big","description":%q}`, strings.Repeat("x", 700))
	in := big + "\nnot json\n" + `{"id":"ok1","source":"s","title":"fine"}` + "\n"
	mustCode(t, runCtl(t, map[string]string{"NATS_URL": a.NATSURL()}, in, "publish"), ctl.ExitOK)
	drained(t, js)
	waitFor(t, "two dead letters", func() bool { return len(dlqMsgs(t, url)) == 2 })
	dl := dlqMsgs(t, url)
	if dl[0].Reason != "too_large" || dl[0].Subject != "incidents.events.s" || dl[0].StreamSeq != 1 || dl[0].Payload != big ||
		dl[1].Reason != "invalid_json" || dl[1].StreamSeq != 2 || dl[1].Payload != "not json" || dl[1].Error == "" {
		t.Fatalf("dead letters: %+v", dl)
	}
	orig, err := js.Stream(context.Background(), "INCIDENTS")
	if err != nil {
		t.Fatal(err)
	}
	first, err := orig.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	received := first.Time.UTC()
	if dl[0].ReceivedAt != received.Format(time.RFC3339Nano) {
		t.Fatalf("dead letter received_at %q, the original was stored at %s", dl[0].ReceivedAt, received.Format(time.RFC3339Nano))
	}
	r := ctlRun("dlq", "list", "--reason", "too_large", "-o", "table")
	mustCode(t, r, ctl.ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], "too_large") {
		t.Errorf("table:\n%s", r.out)
	}
	mustCode(t, ctlRun("dlq", "list", "--reason", "bogus"), ctl.ExitUsage)
	r = ctlRun("dlq", "replay", "--reason", "too_large", "--dry-run")
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "would replay 1 dead letters") || len(dlqMsgs(t, url)) != 2 {
		t.Errorf("dry run:\n%s", r.out)
	}
	stop()

	cfg.Consumer.MaxEventBytes = 4096
	a, _ = runApp(t, cfg)
	waitReady(t, a)
	url = a.NATSURL()
	js = jsFor(t, url)
	bigOnce := func(what string) {
		t.Helper()
		drained(t, js)
		all := allIncidents(t, a.Store())
		if len(all) != 2 {
			t.Fatalf("%s: %d incidents, want 2", what, len(all))
		}
		for _, inc := range all {
			if inc.Title != "big" {
				continue
			}
			if inc.OccurrenceCount != 1 {
				t.Fatalf("%s: the replayed event counted %d times", what, inc.OccurrenceCount)
			}
			if want := received.Truncate(time.Microsecond); !inc.FirstSeen.Equal(want) || !inc.LastSeen.Equal(want) {
				t.Fatalf("%s: first_seen %s, last_seen %s; the original was received at %s", what, inc.FirstSeen, inc.LastSeen, want)
			}
		}
	}
	r = ctlRun("dlq", "replay", "--reason", "too_large", "--keep")
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "replayed 1 dead letters to INCIDENTS (kept in INCIDENTS_DLQ), 0 dropped") {
		t.Errorf("replay --keep:\n%s", r.out)
	}
	waitFor(t, "the replayed event applied", func() bool { return len(allIncidents(t, a.Store())) == 2 })
	bigOnce("first replay")
	// Past the stream's duplicate window, JetStream stores the replay
	// again: the worker recognises the event id.
	time.Sleep(1500 * time.Millisecond)
	r = ctlRun("dlq", "replay", "--reason", "too_large")
	mustCode(t, r, ctl.ExitOK)
	if !strings.Contains(r.out, "replayed 1 dead letters to INCIDENTS (removed from INCIDENTS_DLQ)") {
		t.Errorf("second replay:\n%s", r.out)
	}
	bigOnce("second replay")
	if dl := dlqMsgs(t, url); len(dl) != 1 || dl[0].Reason != "invalid_json" {
		t.Fatalf("after the replay the dead letters are %+v, want the invalid_json one", dl)
	}
	// Still invalid: replayed, removed, and dead-lettered again.
	mustCode(t, ctlRun("dlq", "replay", "--seq", fmt.Sprint(dl[0].Seq)), ctl.ExitOK)
	waitFor(t, "the invalid line dead-lettered again", func() bool {
		dl2 := dlqMsgs(t, url)
		return len(dl2) == 1 && dl2[0].Seq != dl[0].Seq && dl2[0].Reason == "invalid_json"
	})
}

// TestDLQReplayTruncated: a dead letter holding only the start of its
// payload is replayed with the whole original, read from the incident
// stream; when the stream holds another message at that sequence now, the
// dead letter is reported and kept (exit 1).
func TestDLQReplayTruncated(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	js := jsFor(t, url)
	ctx := context.Background()
	full := `{"source":"s","title":"whole"}`
	if _, err := js.Publish(ctx, "incidents.events.s", []byte(full)); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "INCIDENTS")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	letter := func(position string) {
		m := nats.NewMsg("incidents.dlq.too_large")
		m.Data = []byte(full[:10])
		for k, v := range map[string]string{consumer.HeaderReason: "too_large", consumer.HeaderError: "too large", consumer.HeaderSubject: "incidents.events.s",
			consumer.HeaderStreamSeq: "1", consumer.HeaderTruncated: fmt.Sprint(len(full)), jetstream.MsgIDHeader: position} {
			m.Header.Set(k, v)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	position := incident.Meta{Stream: "INCIDENTS", Sequence: 1, Timestamp: orig.Time}.Position()
	letter(position)
	mustCode(t, runCtl(t, env, "", "dlq", "replay"), ctl.ExitOK)
	again, err := s.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Data) != full || again.Header.Get(jetstream.MsgIDHeader) != position || again.Subject != "incidents.events.s" {
		t.Errorf("replayed %q on %s with id %q; want the whole payload on incidents.events.s with id %q", again.Data, again.Subject, again.Header.Get(jetstream.MsgIDHeader), position)
	}
	letter("INCIDENTS:1:12345") // the stream was made again since
	r := runCtl(t, env, "", "dlq", "replay")
	mustCode(t, r, ctl.ExitError)
	if !strings.Contains(r.err, "is another message now") || !strings.Contains(r.out, "replayed 0 dead letters") {
		t.Errorf("stale original:\nstdout %s\nstderr %s", r.out, r.err)
	}
}
