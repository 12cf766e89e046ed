package ctl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
)

type publishFlags struct {
	// bytesSet and skewSet: --max-event-bytes, --max-clock-skew was
	// given, so --config's [consumer] value does not replace it.
	bytesSet, skewSet bool
	natsURL           string
	configPath        string
	file              string
	generate          int
	duplicates        float64
	seed              uint64
	ackRatio          float64
	resolve           float64
	subject           string
	maxPending        int
	retryFor          time.Duration
	validate          bool
	maxBytes          int
	maxSkew           time.Duration
}

func newPublishCmd(o IO, _ func() *zap.Logger) *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish incident events (NDJSON from a file or stdin, or synthetic) to JetStream",
		Example: `  incidentctl publish -f events.ndjson
  cat events.ndjson | incidentctl publish
  incidentctl publish --generate 100000 --duplicates 0.3 --seed 7
  incidentctl publish --config incidentd.toml -f events.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(cmd.Flags().Changed("generate")); err != nil {
				return err
			}
			f.bytesSet, f.skewSet = cmd.Flags().Changed("max-event-bytes"), cmd.Flags().Changed("max-clock-skew")
			return runPublish(cmd.Context(), o, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.natsURL, "nats-url", "", natsURLHelp)
	fs.StringVar(&f.configPath, "config", "", "TOML config `file` whose [nats] url and credentials to connect with")
	fs.StringVarP(&f.file, "file", "f", "", "NDJSON `file` of events, one per line (default stdin)")
	fs.IntVar(&f.generate, "generate", 0, "publish `N` synthetic LLM-platform events instead of reading NDJSON")
	fs.Float64Var(&f.duplicates, "duplicates", 0.3, "with --generate: share of events repeating an identity (half same id, half new events)")
	fs.Uint64Var(&f.seed, "seed", 0, "with --generate: random seed; the same seed gives the same event ids and contents (0: a new seed each run, so runs do not de-duplicate each other)")
	fs.Float64Var(&f.ackRatio, "ack-ratio", 0, "with --generate: share of acknowledge events")
	fs.Float64Var(&f.resolve, "resolve-ratio", 0, "with --generate: share of resolve events")
	fs.StringVar(&f.subject, "subject", DefaultSubject, "subject `template`; {source} is the event's source")
	fs.IntVar(&f.maxPending, "max-pending", 4096, "most publishes awaiting their JetStream ack")
	fs.DurationVar(&f.retryFor, "retry-for", time.Minute, "how long to keep sending again, with their Nats-Msg-Id, the events whose publish or ack was lost with the connection to NATS (a server restart) or with the stream's leader (a failover), counted from the first such failure until an ack succeeds; events without an id are not sent again; 0: fail them at once")
	fs.BoolVar(&f.validate, "validate", false, "decode every NDJSON line first; skip and report bad ones (exit 1) instead of publishing them for the worker to dead-letter")
	fs.IntVar(&f.maxBytes, "max-event-bytes", incident.DefaultMaxEventBytes, "with --validate: the worker's consumer.max_event_bytes (default: --config's, else 65536)")
	fs.DurationVar(&f.maxSkew, "max-clock-skew", 0, "with --validate: the worker's consumer.max_clock_skew, 0 for no bound (default: --config's, else 0)")
	return cmd
}

// check refuses flag values that cannot be meant: a --generate count
// below 1 (when given), -f with --generate, and shares of the generated
// events outside 0..1 or adding up to more than 1.
func (f publishFlags) check(generateSet bool) error {
	if f.maxPending < 1 {
		return fmt.Errorf("%w: --max-pending must be at least 1", errUsage)
	}
	if f.retryFor < 0 {
		return fmt.Errorf("%w: --retry-for %v: must be 0 (no retries) or more", errUsage, f.retryFor)
	}
	if generateSet && f.generate < 1 {
		return fmt.Errorf("%w: --generate %d: must be at least 1", errUsage, f.generate)
	}
	if generateSet && f.file != "" {
		return fmt.Errorf("%w: -f %s and --generate: publish either a file's events or generated ones", errUsage, f.file)
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--duplicates", f.duplicates}, {"--ack-ratio", f.ackRatio}, {"--resolve-ratio", f.resolve}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("%w: %s %v: a share of the generated events, from 0 to 1", errUsage, r.flag, r.v)
		}
	}
	if sum := f.ackRatio + f.resolve + f.duplicates; sum > 1+1e-9 {
		return fmt.Errorf("%w: --ack-ratio %v + --resolve-ratio %v + --duplicates %v is %.3g: they are shares of the same generated events and add up to 1 at most", errUsage, f.ackRatio, f.resolve, f.duplicates, sum)
	}
	return checkSubjectTemplate(f.subject)
}

func runPublish(ctx context.Context, o IO, f publishFlags) error {
	cfg, err := loadConfig(f.configPath, o.Env)
	if err != nil {
		return err
	}
	auth := cfg.NATS
	// --validate checks what the worker on this configuration checks.
	if f.configPath != "" && !f.bytesSet {
		f.maxBytes = cfg.Consumer.MaxEventBytes
	}
	if f.configPath != "" && !f.skewSet {
		f.maxSkew = cfg.Consumer.MaxClockSkew.Duration
	}
	// The input is opened first: when it cannot be read, nothing was
	// published and there is no summary to print.
	in := o.In
	if f.generate == 0 && f.file != "" && f.file != "-" {
		file, err := os.Open(f.file)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		defer file.Close()
		in = file
	}
	target, err := resolveNATS(f.natsURL, o, auth, f.configPath, DefaultNATSURL)
	if err != nil {
		return err
	}
	nc, err := connect(target)
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := newPublisher(ctx, nc, f.maxPending, f.retryFor)
	if err != nil {
		return err
	}
	prog := startProgress(o.Err, func(d time.Duration) string {
		s := p.stats()
		return fmt.Sprintf("published %d, acked %d (%d duplicates dropped), failed %d%s, %s", s.Sent, s.Acked, s.Duplicates, s.Failed, retriedNote(s), rate(s.Acked, d))
	})
	var invalid int
	if f.generate > 0 {
		err = publishGenerated(ctx, p, f)
	} else {
		invalid, err = publishNDJSON(ctx, o, in, p, f)
	}
	st := p.wait()
	prog.clear()
	fmt.Fprintln(o.Out, publishSummary(st))
	perr := p.err(err)
	if errors.Is(err, errNoStream) && errors.Is(perr, errNoStream) {
		err = nil // the run stopped at a subject perr names with the others
	}
	return errors.Join(err, perr, invalidErr(invalid))
}

// publishSummary is the one line publish prints when done, on stdout.
func publishSummary(st publishStats) string {
	noun := "events"
	if st.Sent == 1 {
		noun = "event"
	}
	return fmt.Sprintf("published %d %s: %d acked, %d dropped by JetStream as duplicates (Nats-Msg-Id), %d failed%s",
		st.Sent, noun, st.Acked, st.Duplicates, st.Failed, retriedNote(st))
}

// retriedNote tells, when any were, how many events were sent again after
// the connection to NATS, or the stream's leader, was lost.
func retriedNote(st publishStats) string {
	if st.Retried == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d sent again after the connection to NATS or the stream's leader was lost)", st.Retried)
}

// stoppedAt is the error of an NDJSON run stopped before line lineNo was
// sent, so that the rest can be published from that line (events with an
// id are applied once however often they are published).
func stoppedAt(err error, lineNo int) error {
	return fmt.Errorf("publish stopped (%w) before line %d: it and the lines after it were not sent", err, lineNo)
}

func invalidErr(n int) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d invalid lines skipped (--validate)", n)
}

func publishGenerated(ctx context.Context, p *publisher, f publishFlags) error {
	cfg := loadgen.DefaultConfig()
	cfg.Seed, cfg.DuplicateRatio, cfg.AckRatio, cfg.ResolveRatio = f.seed, f.duplicates, f.ackRatio, f.resolve
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	// Event times end now, one millisecond apart, so the incidents look like
	// live ones (and are not swept as long quiet).
	cfg.Start = time.Now().UTC().Add(-time.Duration(f.generate) * cfg.Step)
	g := loadgen.New(cfg)
	for i := range f.generate {
		err := ctx.Err()
		if err == nil {
			ev := g.Next()
			err = p.publish(ctx, subjectFor(f.subject, ev.Source), ev.ID, loadgen.Marshal(ev))
		}
		if stopped(ctx, err) {
			return fmt.Errorf("publish stopped (%w): %d of the %d generated events were not sent", err, f.generate-i, f.generate)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stopped reports whether err is the run's context ending (Ctrl-C,
// SIGTERM), which publish reports as such, naming what was not sent.
func stopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// publishNDJSON publishes each non-blank line as is, with Nats-Msg-Id from
// its id (or external_id) and the subject from its source; in is the
// opened -f file or stdin. It returns the
// number of lines skipped by --validate.
func publishNDJSON(ctx context.Context, o IO, in io.Reader, p *publisher, f publishFlags) (int, error) {
	r := bufio.NewReaderSize(in, 1<<20)
	dec := incident.NewDecoder(f.maxBytes).LimitClockSkew(f.maxSkew)
	invalid := 0
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return invalid, stoppedAt(err, lineNo)
		}
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			id, source := incident.Peek(line)
			if f.validate {
				// As the worker will: the stream position and timestamp stand
				// in for a missing id and event time.
				meta := incident.Meta{MsgID: id, Stream: "validate", Sequence: uint64(lineNo), Timestamp: time.Now()}
				if _, derr := dec.Decode(line, meta); derr != nil {
					fmt.Fprintf(o.Err, "line %d: %v\n", lineNo, derr)
					invalid++
					goto next
				}
			}
			if perr := p.publish(ctx, subjectFor(f.subject, source), id, bytes.Clone(line)); stopped(ctx, perr) {
				return invalid, stoppedAt(perr, lineNo)
			} else if perr != nil {
				return invalid, p.lineError(lineNo, len(line), perr)
			}
		}
	next:
		if errors.Is(err, io.EOF) {
			return invalid, nil
		}
		if err != nil {
			return invalid, fmt.Errorf("read line %d: %w", lineNo, err)
		}
	}
}
