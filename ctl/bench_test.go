package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/ctl"
)

// TestBench runs the whole benchmark at a tiny size: embedded NATS, an
// in-process worker on Pebble, a short latency phase. The summary must
// account for every event.
func TestBench(t *testing.T) {
	for _, nats := range []string{"embedded", "external"} {
		t.Run(nats, func(t *testing.T) {
			args := []string{"bench", "--events", "1500", "--rate", "1000", "--duration", "1s", "-o", "json", "--seed", "5"}
			if nats == "external" {
				args = append(args, "--nats-url", embeddedNATS(t))
			}
			r := runCtl(t, nil, "", args...)
			mustCode(t, r, ctl.ExitOK)
			var res struct {
				Load struct {
					Events int64 `json:"events_published"`
				} `json:"load"`
				Drain struct {
					Messages     int64   `json:"messages"`
					EventsPerSec float64 `json:"events_per_second"`
					Batches      int64   `json:"batches"`
					FlushP99MS   float64 `json:"flush_p99_ms"`
				} `json:"drain"`
				Latency struct {
					Published int64   `json:"events_published"`
					Samples   uint64  `json:"samples"`
					P99MS     float64 `json:"p99_ms"`
				} `json:"latency"`
				RSS   int64      `json:"rss_peak_bytes"`
				Check benchCheck `json:"check"`
			}
			if err := json.Unmarshal([]byte(r.out), &res); err != nil {
				t.Fatalf("%v\n%s", err, r.out)
			}
			c := res.Check
			switch {
			case len(c.Problems) > 0:
				t.Errorf("problems: %v", c.Problems)
			case res.Load.Events != 1500 || res.Latency.Published != 1000:
				t.Errorf("published %d + %d, want 1500 + 1000", res.Load.Events, res.Latency.Published)
			case c.Applied != c.Distinct || c.Distinct < 2000 || c.Distinct > 2500:
				t.Errorf("applied %d of %d distinct event ids", c.Applied, c.Distinct)
			case c.Received != c.Distinct:
				t.Errorf("worker received %d messages for %d distinct ids (JetStream should drop same-id repeats)", c.Received, c.Distinct)
			case c.Incidents <= 0 || c.Incidents > c.Distinct:
				t.Errorf("%d incidents", c.Incidents)
			case res.Drain.Messages <= 0 || res.Drain.Batches <= 0 || res.Drain.EventsPerSec <= 0 || res.Drain.FlushP99MS <= 0:
				t.Errorf("drain figures: %+v", res.Drain)
			case res.Latency.Samples == 0 || res.Latency.P99MS <= 0:
				t.Errorf("latency figures: %+v", res.Latency)
			case res.RSS <= 0:
				t.Errorf("no RSS figure")
			}
		})
	}
}

func TestBenchFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--worker-url", "http://127.0.0.1:1"}, "--worker-url needs the NATS its worker consumes from"},
		{[]string{"-o", "yaml"}, `--output "yaml"`},
		{[]string{"--duplicates", "1.5"}, "--duplicates 1.5"},
		{[]string{"--events", "0"}, "--events must be at least 1"},
	}
	for _, c := range cases {
		r := runCtl(t, nil, "", append([]string{"bench"}, c.args...)...)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, c.want) {
			t.Errorf("bench %v: stderr %q, want %q", c.args, r.err, c.want)
		}
	}
}

// TestBenchWorkerURL benchmarks a worker that is already running: only
// its /metrics and API are read.
func TestBenchWorkerURL(t *testing.T) {
	a := startWorker(t)
	r := runCtl(t, nil, "", "bench", "--nats-url", a.NATSURL(), "--worker-url", a.HTTPURL(),
		"--events", "800", "--rate", "500", "--duration", "1s", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	var res struct {
		RSS   int64      `json:"rss_peak_bytes"`
		Check benchCheck `json:"check"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if len(res.Check.Problems) > 0 || res.Check.Applied != res.Check.Distinct || res.Check.Incidents <= 0 || res.RSS <= 0 {
		t.Errorf("summary: %+v, rss %d", res.Check, res.RSS)
	}
	// A second run against the same worker, whose store already holds the
	// first run's incidents (more than this run's events), still passes:
	// the check counts the incidents opened during the run. (Seed 2 was
	// the first run's latency phase: all its events merge.)
	for _, seed := range []string{"77", "2"} {
		r = runCtl(t, nil, "", "bench", "--nats-url", a.NATSURL(), "--worker-url", a.HTTPURL(),
			"--events", "300", "--seed", seed, "--rate", "0", "-o", "json")
		mustCode(t, r, ctl.ExitOK)
	}
	// The worker's NATS from NATS_URL, as for every command.
	r = runCtl(t, map[string]string{"NATS_URL": a.NATSURL()}, "", "bench", "--worker-url", a.HTTPURL(),
		"--events", "300", "--seed", "78", "--rate", "0", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
}

// TestBenchNeverUsesTheConfigsStore: with a deployment's --config, the
// in-process worker still writes into a temporary directory, and a second
// run starts from an empty store.
func TestBenchNeverUsesTheConfigsStore(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "pebble")
	cfgPath := filepath.Join(dir, "incidentd.toml")
	body := fmt.Sprintf("[state]\npath = %q\n\n[consumer]\nbatch_size = 256\n", store)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		r := runCtl(t, nil, "", "bench", "--config", cfgPath, "--events", "600", "--rate", "0", "-o", "json", "--seed", "9")
		mustCode(t, r, ctl.ExitOK)
		var res struct {
			Batch int        `json:"batch_size"`
			Check benchCheck `json:"check"`
		}
		if err := json.Unmarshal([]byte(r.out), &res); err != nil {
			t.Fatalf("%v\n%s", err, r.out)
		}
		if len(res.Check.Problems) > 0 || res.Check.Applied != res.Check.Distinct || res.Check.Distinct == 0 {
			t.Fatalf("run %d: %+v", run, res.Check)
		}
		if res.Batch != 256 {
			t.Fatalf("run %d: batch size %d, want the config's 256", run, res.Batch)
		}
		if _, err := os.Stat(store); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("run %d: the config's store %s was touched (%v)", run, store, err)
		}
	}
}

// TestBenchWorkerCPU: with --worker-url the drain's worker CPU covers the
// whole drain, which starts at the first publish: it is at least what the
// worker process (a process of its own) used from before the bench to
// after it, less the little it spends outside the drain (answering the
// bench's scrapes, idle ticks).
func TestBenchWorkerCPU(t *testing.T) {
	natsURL := embeddedNATS(t)
	worker := startWorkerProcess(t, natsURL)
	before := processCPU(t, worker)
	r := runCtl(t, nil, "", "bench", "--nats-url", natsURL, "--worker-url", worker, "--events", "20000", "--rate", "0", "-o", "json")
	mustCode(t, r, ctl.ExitOK)
	used := processCPU(t, worker) - before
	var res struct {
		Drain struct {
			CPUSeconds float64 `json:"cpu_seconds"`
		} `json:"drain"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	t.Logf("worker CPU: %.2fs reported for the drain, %.2fs used around the bench", res.Drain.CPUSeconds, used)
	if used < 0.1 {
		t.Fatalf("the worker used %.2fs of CPU for 20000 events: too little to compare", used)
	}
	if res.Drain.CPUSeconds < 0.8*used-0.05 {
		t.Errorf("drain reports %.2fs of worker CPU, the worker used %.2fs", res.Drain.CPUSeconds, used)
	}
}

// processCPU reads process_cpu_seconds_total from a worker's /metrics.
func processCPU(t *testing.T, worker string) float64 {
	t.Helper()
	resp, err := http.Get(worker + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no process_cpu_seconds_total in %s/metrics", worker)
	return 0
}

// TestBenchWorkerStream: with --worker-url the drain is watched on the
// stream listening on --subject and the worker's durable there, not on the
// configuration's (here default) INCIDENTS, whose backlog no worker
// consumes; a --config naming another
// stream, a stream with several durables none of them the config's, or a
// subject no stream listens on are usage errors.
func TestBenchWorkerStream(t *testing.T) {
	a := startWorkerWith(t, func(c *config.Config) {
		c.Consumer.Stream, c.Consumer.Durable, c.Consumer.Subjects = "T1", "t1", []string{"t1.>"}
		c.Consumer.DLQStream, c.Consumer.DLQSubjectPrefix = "T1_DLQ", "t1dlq"
	})
	ctx := context.Background()
	js := jsFor(t, a.NATSURL())
	// An INCIDENTS stream beside it, with its incidentd consumer and a
	// backlog nobody consumes: a bench watching it never sees it drained.
	if _, err := consumer.Setup(ctx, js, config.Default().Consumer); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "incidents.events.x", []byte(fmt.Sprintf(`{"id":"b%d","source":"x","title":"t"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	other := filepath.Join(dir, "other.toml")
	writeFile(t, other, "[consumer]\nstream = \"INCIDENTS\"\n")
	t1 := filepath.Join(dir, "t1.toml")
	writeFile(t, t1, "[consumer]\nstream = \"T1\"\ndurable = \"t1\"\n")
	bench := func(args ...string) result {
		return runCtl(t, nil, "", append([]string{"bench", "--nats-url", a.NATSURL(), "--worker-url", a.HTTPURL(),
			"--events", "300", "--rate", "0", "--timeout", "20s", "-o", "json"}, args...)...)
	}
	ok := func(r result) {
		t.Helper()
		mustCode(t, r, ctl.ExitOK)
		var res struct {
			Stream   string     `json:"stream"`
			Consumer string     `json:"consumer"`
			Check    benchCheck `json:"check"`
		}
		if err := json.Unmarshal([]byte(r.out), &res); err != nil {
			t.Fatalf("%v\n%s", err, r.out)
		}
		if res.Stream != "T1" || res.Consumer != "t1" || len(res.Check.Problems) > 0 || res.Check.Applied != res.Check.Distinct {
			t.Fatalf("watched %s/%s: %+v", res.Stream, res.Consumer, res.Check)
		}
	}
	ok(bench("--subject", "t1.{source}", "--seed", "11"))
	ok(bench("--subject", "t1.{source}", "--seed", "12", "--config", t1))

	usage := []struct {
		args []string
		want string
	}{
		{[]string{"--subject", "t1.{source}", "--config", other}, "the [consumer] stream of " + other + " is INCIDENTS, but the stream listening on t1."},
		{[]string{"--subject", "none.{source}"}, "no JetStream stream listens on none."},
		{[]string{"--subject", "t1.>"}, "--subject"},
	}
	for _, c := range usage {
		r := bench(c.args...)
		mustCode(t, r, ctl.ExitUsage)
		if !strings.Contains(r.err, c.want) {
			t.Errorf("bench %v: stderr %q, want %q", c.args, r.err, c.want)
		}
	}
	// A second durable on T1: the config's (default) durable is on neither,
	// so which to watch must be named; --config names it.
	if _, err := js.CreateConsumer(ctx, "T1", jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	r := bench("--subject", "t1.{source}")
	mustCode(t, r, ctl.ExitUsage)
	if !strings.Contains(r.err, "stream T1 has 2 durable pull consumers (audit, t1)") || !strings.Contains(r.err, "[consumer] durable") {
		t.Errorf("several durables: stderr %q", r.err)
	}
	ok(bench("--subject", "t1.{source}", "--seed", "13", "--config", t1))
}

// benchCheck is the check of bench's JSON summary.
type benchCheck struct {
	Distinct  int64    `json:"distinct_event_ids"`
	Applied   int64    `json:"events_applied"`
	Received  int64    `json:"events_received"`
	Incidents int64    `json:"incidents_in_store"`
	Problems  []string `json:"problems"`
}
