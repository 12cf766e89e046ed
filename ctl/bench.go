package ctl

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
)

// benchFlags configure `incidentctl bench`.
type benchFlags struct {
	events     int
	duplicates float64
	seed       uint64
	natsURL    string
	workerURL  string
	configPath string
	backend    string
	stateDir   string
	rate       int
	duration   time.Duration
	subject    string
	maxPending int
	timeout    time.Duration
	output     string
	cpuprofile string
	keep       bool
}

func newBenchCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "End-to-end benchmark: load the stream, measure a worker's drain rate, then latency at a fixed publish rate",
		Long: `bench publishes --events realistic events (loadgen, --duplicates of them repeating an
identity) onto a stream, then starts a worker in this process (app.New, Pebble with Sync
commits in a temporary directory unless --state-dir names one; a --config file's [state]
path is never used, so a bench cannot fill a real store) and measures
how fast it drains the stream: events/s, batches/s, flush p50/p99. Then it publishes at
--rate events/s for --duration and reads the publish-to-commit latency p50/p99 from the
worker's incidentd_end_to_end_latency_seconds histogram. Worker RSS is the highest
VmRSS of this process sampled every 100 ms while the worker ran (in process: it includes
the publisher, and the nats-server when embedded), or with --worker-url the highest of the
worker's process_resident_memory_bytes, sampled every second.

NATS: --nats-url, else $NATS_URL, else the [nats] url of --config (whose credentials are
used in any case), else embedded in this process (the issue's targets are
stated for an external nats-server: nats-server -js -sd DIR -a 127.0.0.1 -p 4222). The
in-process worker uses its own streams (INCIDENTS_BENCH, INCIDENTS_BENCH_DLQ, consumer
incidentd-bench), deleted before and after the run.

--worker-url benchmarks a worker that is already running instead: events go to its
subjects (--subject) on that NATS, the drain is measured from the first publish (the
worker consumes while the load is published) and figures come from its /metrics. The
drain is watched on the stream that listens on those subjects, through the worker's
durable pull consumer there: the [consumer] durable of --config when the stream has it,
else the stream's only one (several: name it with --config).`,
		Example: `  incidentctl bench
  nats-server -js -sd /tmp/nats -a 127.0.0.1 -p 4222 &
  incidentctl bench --nats-url nats://127.0.0.1:4222 --events 200000 --rate 20000 --duration 10s
  incidentctl bench --nats-url nats://127.0.0.1:4222 --worker-url http://127.0.0.1:8080 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := jsonOutput(f.output, o.Out)
			if err != nil {
				return err
			}
			if f.cpuprofile != "" {
				pf, err := os.Create(f.cpuprofile)
				if err != nil {
					return fmt.Errorf("cpuprofile: %w", err)
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return fmt.Errorf("cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := runBench(cmd.Context(), o, f, logger())
			if res == nil {
				return err
			}
			if err != nil {
				// The run stopped: the summary says why, as a problem.
				res.Check.Problems = append(res.Check.Problems, err.Error())
			}
			if asJSON {
				if werr := writeJSON(o.Out, res); werr != nil {
					return werr
				}
			} else {
				res.print(o.Out)
			}
			if err == nil && len(res.Check.Problems) > 0 {
				err = fmt.Errorf("bench: %s", strings.Join(res.Check.Problems, "; "))
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&f.events, "events", 200_000, "events loaded before the worker starts")
	fs.Float64Var(&f.duplicates, "duplicates", 0.3, "share of events repeating an identity (half with the same event id)")
	fs.Uint64Var(&f.seed, "seed", 1, "loadgen seed")
	fs.StringVar(&f.natsURL, "nats-url", "", "external NATS server (default $NATS_URL, else the [nats] url of --config, else an embedded one in this process)")
	fs.StringVar(&f.workerURL, "worker-url", "", "benchmark the running worker at this URL instead of starting one (needs its NATS: --nats-url, $NATS_URL or --config)")
	fs.StringVar(&f.configPath, "config", "", "config `file`: [nats] url and credentials to connect with; for the in-process worker also [state], [consumer] batching, [dedupe]")
	fs.StringVar(&f.backend, "state-backend", "", "in-process worker's backend (default pebble, or the --config one)")
	fs.StringVar(&f.stateDir, "state-dir", "", "in-process worker's Pebble `directory` (default a temporary one, removed after)")
	fs.IntVar(&f.rate, "rate", 20_000, "events/s offered in the latency phase (0 skips it)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "length of the latency phase")
	fs.StringVar(&f.subject, "subject", DefaultSubject, "with --worker-url: the subject template its stream listens on (the stream and its durable consumer to watch are found from it)")
	fs.IntVar(&f.maxPending, "max-pending", 4096, "most publishes awaiting their JetStream ack")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up when the worker has not drained the stream by then")
	fs.StringVarP(&f.output, "output", "o", "", "summary format: table or json (default table on a terminal, json otherwise)")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run (publisher and in-process worker) to `file`")
	fs.BoolVar(&f.keep, "keep", false, "keep the bench streams (and a temporary state directory) after the run")
	return cmd
}

// benchResult is the summary, printed as a table or JSON.
type benchResult struct {
	Machine string `json:"machine"`
	NATS    string `json:"nats"`
	Worker  string `json:"worker"`
	Store   string `json:"store"`
	// Stream and Consumer are what a --worker-url bench watches drain: the
	// stream listening on --subject and the worker's durable on it.
	Stream   string `json:"stream,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	Batch    int    `json:"batch_size,omitempty"`
	Load     struct {
		Events       int64   `json:"events_published"`
		DroppedDup   int64   `json:"dropped_by_jetstream_dedup"`
		Stored       int64   `json:"messages_in_stream"`
		Seconds      float64 `json:"seconds"`
		EventsPerSec float64 `json:"events_per_second"`
	} `json:"load"`
	Drain struct {
		Messages      int64   `json:"messages"`
		Seconds       float64 `json:"seconds"`
		EventsPerSec  float64 `json:"events_per_second"`
		Batches       int64   `json:"batches"`
		BatchesPerSec float64 `json:"batches_per_second"`
		AvgBatch      float64 `json:"avg_batch_events"`
		FlushP50MS    float64 `json:"flush_p50_ms"`
		FlushP99MS    float64 `json:"flush_p99_ms"`
		// CPUSeconds is the worker process's CPU time during the drain
		// (in process: with the idle publisher, and the nats-server when
		// embedded); on a busy machine events per CPU second is the
		// steadier figure.
		CPUSeconds      float64 `json:"cpu_seconds"`
		EventsPerCPUSec float64 `json:"events_per_cpu_second"`
	} `json:"drain"`
	Latency struct {
		OfferedPerSec  int     `json:"offered_events_per_second"`
		Seconds        float64 `json:"seconds"`
		Published      int64   `json:"events_published"`
		AchievedPerSec float64 `json:"achieved_events_per_second"`
		Samples        uint64  `json:"samples"`
		P50MS          float64 `json:"p50_ms"`
		P99MS          float64 `json:"p99_ms"`
		FlushP99MS     float64 `json:"flush_p99_ms"`
	} `json:"latency"`
	RSSPeakBytes int64  `json:"rss_peak_bytes"`
	RSSSource    string `json:"rss_source"`
	Check        struct {
		DistinctEventIDs int64    `json:"distinct_event_ids"`
		EventsApplied    int64    `json:"events_applied"`
		EventsReceived   int64    `json:"events_received"`
		Invalid          int64    `json:"events_invalid"`
		DeadLettered     int64    `json:"events_dead_lettered"`
		BatchesFailed    int64    `json:"batches_failed"`
		Incidents        int64    `json:"incidents_in_store"`
		Problems         []string `json:"problems"`
	} `json:"check"`
}

// newBenchResult is an empty summary: its problems are an empty list, so the
// JSON says "problems": [] when there are none.
func newBenchResult() *benchResult {
	r := &benchResult{Machine: machine()}
	r.Check.Problems = []string{}
	return r
}

// redactURL masks the userinfo of a URL (the worker's) as every URL
// incidentctl shows: the password, and a user without one (a token).
func redactURL(s string) string { return config.RedactNATSURL(s) }

func (r *benchResult) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("machine", "%s", r.Machine)
	row("nats / worker / store", "%s / %s / %s", r.NATS, r.Worker, r.Store)
	if r.Stream != "" {
		row("stream / consumer", "%s / %s", r.Stream, r.Consumer)
	}
	row("load", "%d events in %.2fs (%.0f/s), %d dropped as duplicate msg ids, %d in stream", r.Load.Events, r.Load.Seconds, r.Load.EventsPerSec, r.Load.DroppedDup, r.Load.Stored)
	row("drain", "%d messages in %.2fs: %.0f events/s", r.Drain.Messages, r.Drain.Seconds, r.Drain.EventsPerSec)
	row("batches", "%d (%.0f/s, %.0f events avg)", r.Drain.Batches, r.Drain.BatchesPerSec, r.Drain.AvgBatch)
	row("flush p50 / p99", "%.2f ms / %.2f ms", r.Drain.FlushP50MS, r.Drain.FlushP99MS)
	row("worker CPU in drain", "%.2f s (%.0f events per CPU second, %.2f cores busy)", r.Drain.CPUSeconds, r.Drain.EventsPerCPUSec, r.Drain.CPUSeconds/max(r.Drain.Seconds, 1e-9))
	if r.Latency.OfferedPerSec > 0 {
		row("latency phase", "%d/s offered for %.1fs, %.0f/s achieved (%d events)", r.Latency.OfferedPerSec, r.Latency.Seconds, r.Latency.AchievedPerSec, r.Latency.Published)
		row("publish-to-commit p50 / p99", "%.2f ms / %.2f ms (%d samples; flush p99 %.2f ms)", r.Latency.P50MS, r.Latency.P99MS, r.Latency.Samples, r.Latency.FlushP99MS)
	}
	row("RSS peak", "%.1f MiB (%s)", float64(r.RSSPeakBytes)/(1<<20), r.RSSSource)
	c := r.Check
	row("check", "%d distinct event ids, %d applied, %d received, %d invalid, %d dead-lettered, %d failed batches, %d incidents",
		c.DistinctEventIDs, c.EventsApplied, c.EventsReceived, c.Invalid, c.DeadLettered, c.BatchesFailed, c.Incidents)
	if len(c.Problems) == 0 {
		row("", "ok: every event committed once")
	}
	for _, p := range c.Problems {
		row("", "PROBLEM: %s", p)
	}
	_ = tw.Flush()
}

// machine describes the host: CPU model, cores, memory.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	mem := ""
	if kb := procStatusKB("/proc/meminfo", "MemTotal:"); kb > 0 {
		mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s)%s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, mem, runtime.Version())
}

// procStatusKB reads a "Key:   123 kB" line of a /proc file.
func procStatusKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			var n int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, key)), "%d", &n)
			return n
		}
	}
	return 0
}
