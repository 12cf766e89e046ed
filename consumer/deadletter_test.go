package consumer_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

// TestDeadLetterStreamRecreated: with the dead-letter stream deleted under
// a running worker, a bad message's dead letter fails, is counted, the
// worker sets the stream up again, and the redelivered message lands.
func TestDeadLetterStreamRecreated(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	// The stream is set up again after 5 s (rebindDelay): redeliveries 2 s
	// apart keep the message's five deliveries beyond that.
	cfg.Consumer.RetryMax.Duration = 2 * time.Second
	w := e.start(cfg, stores[0].open(t, ""))
	e.waitFor("worker ready", 10*time.Second, func() bool { return w.c.Ready() == nil })
	if err := e.js.DeleteStream(context.Background(), cfg.Consumer.DLQStream); err != nil {
		t.Fatal(err)
	}
	e.publish([][]byte{[]byte(`not json`)})
	e.waitFor("the dead letter in a stream set up again", 30*time.Second, func() bool {
		_, err := e.js.Stream(context.Background(), cfg.Consumer.DLQStream)
		return err == nil && len(e.dlq(cfg)) == 1
	})
	if n := testutil.ToFloat64(w.m.DeadLetterFailures.WithLabelValues(string(incident.ReasonInvalidJSON))); n < 1 {
		t.Fatalf("dead_letter_failures_total{reason=invalid_json} = %v, want at least 1", n)
	}
	e.waitFor("counted as dead-lettered", 10*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonInvalidJSON))) == 1
	})
	if n := testutil.ToFloat64(w.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedDeadLetterStream)); n != 1 {
		t.Fatalf("jetstream_recreated_total{object=dead_letter_stream} = %v, want 1", n)
	}
}

// TestDeadLetterTruncated: a payload that fits the server's max_payload but
// not with the dead letter's headers is dead-lettered with its start and
// the original size, instead of failing until max_deliver and being lost.
func TestDeadLetterTruncated(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	w := e.start(cfg, stores[0].open(t, ""))
	size := int(e.nc.MaxPayload()) - 64 // fits alone, not with the dead letter's headers
	payload := []byte(`{"source":"s","title":"t","description":"` + strings.Repeat("x", size-50) + `"}`)
	payload = append(payload, []byte(strings.Repeat(" ", size-len(payload)))...)
	e.publish([][]byte{payload})
	e.waitFor("the dead letter", 30*time.Second, func() bool { return len(e.dlq(cfg)) == 1 })
	m := e.dlq(cfg)[0]
	if m.Header.Get(consumer.HeaderReason) != string(incident.ReasonTooLarge) || m.Header.Get(consumer.HeaderTruncated) != strconv.Itoa(size) {
		t.Fatalf("headers %v", m.Header)
	}
	if len(m.Data) == 0 || len(m.Data) >= size || string(m.Data) != string(payload[:len(m.Data)]) {
		t.Fatalf("payload %d bytes, want the start of the %d-byte original", len(m.Data), size)
	}
	if n := testutil.ToFloat64(w.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonTooLarge))); n != 1 {
		t.Fatalf("dead-lettered %v", n)
	}
}

// TestDeadLetterLogged: a stored dead letter is logged (reason, error,
// subject, sequences) at most once every 10 s, so a producer sending only
// bad events does not flood the log; the counter counts every one.
func TestDeadLetterLogged(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	core, logs := observer.New(zap.InfoLevel)
	w := e.startLogged(cfg, stores[0].open(t, ""), zap.New(core))
	e.waitFor("worker ready", 10*time.Second, func() bool { return w.c.Ready() == nil })
	bad := make([][]byte, 20)
	for i := range bad {
		bad[i] = []byte(`{"source":"s","title":"t","severity":"P9"}`)
	}
	e.publish(bad)
	e.waitFor("twenty dead letters counted", 20*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonInvalidField))) == 20
	})
	lines := logs.FilterMessage("event dead-lettered").All()
	if len(lines) != 1 {
		t.Fatalf("%d log lines for 20 dead letters within 10 s, want 1", len(lines))
	}
	f := lines[0].ContextMap()
	if lines[0].Level != zap.WarnLevel || f["reason"] != "invalid_field" || !strings.Contains(f["error"].(string), `"P9"`) ||
		!strings.HasPrefix(f["subject"].(string), "incidents.") || f["stream_seq"] != uint64(1) || f["not_logged_since_last"] != int64(0) {
		t.Fatalf("log line %s %v", lines[0].Level, f)
	}
}
