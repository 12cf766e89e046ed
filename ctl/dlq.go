package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
)

// dlqFlags select dead letters and say where the streams are.
type dlqFlags struct {
	cfgPath, natsURL string
	reasons          []string
	seqs             []uint
}

func (f *dlqFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.cfgPath, "config", "", "TOML config `file` ([consumer] stream names, [nats] url and credentials)")
	fs.StringVar(&f.natsURL, "nats-url", "", natsURLHelp)
	fs.StringArrayVar(&f.reasons, "reason", nil, "only dead letters of this reason: "+reasonList()+" (repeatable or comma-separated)")
	fs.UintSliceVar(&f.seqs, "seq", nil, "only these sequences of the dead-letter stream (repeatable or comma-separated)")
}

func reasonList() string {
	names := make([]string, len(incident.Reasons))
	for i, r := range incident.Reasons {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// wants reports whether the dead letter m is selected by the flags.
func (f *dlqFlags) wants(m *jetstream.RawStreamMsg) bool {
	if len(f.reasons) > 0 && !slices.Contains(f.reasons, m.Header.Get(consumer.HeaderReason)) {
		return false
	}
	return len(f.seqs) == 0 || slices.Contains(f.seqs, uint(m.Sequence))
}

// check splits comma-separated reasons and refuses unknown ones.
func (f *dlqFlags) check() error {
	var rs []string
	for _, v := range f.reasons {
		for r := range strings.SplitSeq(v, ",") {
			r = strings.TrimSpace(r)
			if !slices.Contains(incident.Reasons, incident.Reason(r)) {
				return fmt.Errorf("%w: --reason %q: want one of %s", errUsage, r, reasonList())
			}
			rs = append(rs, r)
		}
	}
	f.reasons = rs
	return nil
}

// open connects to NATS and returns the configuration's consumer section.
func (f *dlqFlags) open(o IO) (*nats.Conn, jetstream.JetStream, config.ConsumerConfig, error) {
	if err := f.check(); err != nil {
		return nil, nil, config.ConsumerConfig{}, err
	}
	cfg, err := loadConfig(f.cfgPath, o.Env)
	if err != nil {
		return nil, nil, config.ConsumerConfig{}, err
	}
	target, err := resolveNATS(f.natsURL, o, cfg.NATS, f.cfgPath, DefaultNATSURL)
	if err != nil {
		return nil, nil, config.ConsumerConfig{}, err
	}
	nc, err := connect(target)
	if err != nil {
		return nil, nil, config.ConsumerConfig{}, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, config.ConsumerConfig{}, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, cfg.Consumer, nil
}

// eachDeadLetter calls fn for every selected message of the dead-letter
// stream, oldest first, as the stream held them when it started.
func eachDeadLetter(ctx context.Context, js jetstream.JetStream, name string, f *dlqFlags, fn func(*jetstream.RawStreamMsg) error) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", name, err)
	}
	st := s.CachedInfo().State
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		if len(f.seqs) > 0 && !slices.Contains(f.seqs, uint(seq)) {
			continue
		}
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted (a replay moved it), or aged out meanwhile
		}
		if err != nil {
			return fmt.Errorf("read %s %d: %w", name, seq, err)
		}
		if !f.wants(m) {
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// deadLetter is one dead letter as `dlq list -o json` prints it.
type deadLetter struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	Subject   string    `json:"subject"`
	StreamSeq uint64    `json:"stream_seq"`
	MsgID     string    `json:"msg_id,omitempty"`
	// ReceivedAt is when JetStream first received the event (the
	// original's timestamp): absent on letters written before the header.
	ReceivedAt string `json:"received_at,omitempty"`
	Truncated  int    `json:"truncated,omitempty"`
	Payload    string `json:"payload"`
}

func toDeadLetter(m *jetstream.RawStreamMsg) deadLetter {
	h := m.Header
	ss, _ := strconv.ParseUint(h.Get(consumer.HeaderStreamSeq), 10, 64)
	tr, _ := strconv.Atoi(h.Get(consumer.HeaderTruncated))
	return deadLetter{Seq: m.Sequence, Time: m.Time.UTC(), Reason: h.Get(consumer.HeaderReason), Error: h.Get(consumer.HeaderError),
		Subject: h.Get(consumer.HeaderSubject), StreamSeq: ss, MsgID: h.Get(consumer.HeaderMsgID), ReceivedAt: h.Get(consumer.HeaderReceivedAt),
		Truncated: tr, Payload: string(m.Data)}
}

func newDLQCmd(o IO, _ func() *zap.Logger) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List the dead letters, or publish them to the incident stream again",
		Example: `  incidentctl dlq list --reason max_deliver
  incidentctl dlq replay --reason max_deliver`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(o.Err)
			_ = cmd.Help()
			return fmt.Errorf("%w: dlq needs a command: list or replay", errUsage)
		},
	}
	cmd.AddCommand(newDLQListCmd(o), newDLQReplayCmd(o))
	return cmd
}

func newDLQListCmd(o IO) *cobra.Command {
	var f dlqFlags
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the dead letters (oldest first) with their reason, error and original subject",
		Example: `  incidentctl dlq list
  incidentctl dlq list --reason max_deliver -o json | jq -r .payload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := jsonOutput(output, o.Out)
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("%w: --limit %d: want 0 (all) or more", errUsage, limit)
			}
			nc, js, cc, err := f.open(o)
			if err != nil {
				return err
			}
			defer nc.Close()
			return listDeadLetters(cmd.Context(), js, cc.DLQStream, &f, limit, asJSON, o.Out)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table or json (one object per line; default table on a terminal, json otherwise)")
	cmd.Flags().IntVar(&limit, "limit", 0, "most dead letters to show (0: all)")
	return cmd
}

// errLimit ends a listing at --limit.
var errLimit = errors.New("limit reached")

func listDeadLetters(ctx context.Context, js jetstream.JetStream, stream string, f *dlqFlags, limit int, asJSON bool, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "SEQ\tTIME\tREASON\tSUBJECT\tSTREAM_SEQ\tERROR")
	}
	enc := json.NewEncoder(w)
	n := 0
	err := eachDeadLetter(ctx, js, stream, f, func(m *jetstream.RawStreamMsg) error {
		if limit > 0 && n == limit {
			return errLimit
		}
		n++
		d := toDeadLetter(m)
		if asJSON {
			return enc.Encode(d)
		}
		_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.Time.Format(time.RFC3339), d.Reason, d.Subject, d.StreamSeq, oneLine(d.Error))
		return err
	})
	if errors.Is(err, errLimit) {
		err = nil
	}
	if !asJSON {
		if ferr := tw.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// oneLine keeps a table row on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
