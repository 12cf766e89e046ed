package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
)

// errReplayFailed: some dead letters could not be published again.
var errReplayFailed = errors.New("dlq replay: some dead letters were not replayed")

func newDLQReplayCmd(o IO) *cobra.Command {
	var f dlqFlags
	var keep, dryRun bool
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Publish dead letters to their original subject again, and remove them from the dead-letter stream",
		Long: `replay publishes each selected dead letter's original payload (read from the incident
stream when the dead letter holds only its start) on the subject it was first published on,
with its original Nats-Msg-Id, or else the original's stream position as the id: an event
without an id of its own keeps the id the worker gave it the first time, so a replay is
applied once, however often it runs (the worker skips an event id it applied). Each dead
letter JetStream stored again is removed from the dead-letter stream (unless --keep). Use it
after fixing what sent messages there: max_deliver after a crash loop, or too_large after
raising consumer.max_event_bytes; events still invalid are dead-lettered again.`,
		Example: `  incidentctl dlq replay --reason max_deliver --dry-run
  incidentctl dlq replay --reason max_deliver
  incidentctl dlq replay --seq 12,13`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nc, js, cc, err := f.open(o)
			if err != nil {
				return err
			}
			defer nc.Close()
			st, err := replayDeadLetters(cmd.Context(), js, cc, &f, keep, dryRun, o)
			fmt.Fprintln(o.Out, st.summary(cc, keep, dryRun))
			if err == nil && st.Failed > 0 {
				err = fmt.Errorf("%w: %d failed (see above)", errReplayFailed, st.Failed)
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the replayed dead letters in the dead-letter stream")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be replayed; publish and remove nothing")
	return cmd
}

// replayStats counts a replay's dead letters.
type replayStats struct {
	Replayed   int // stored again in the incident stream
	Duplicates int // dropped by JetStream: the id is in the stream's duplicate window
	Failed     int
}

func (s replayStats) summary(cc config.ConsumerConfig, keep, dryRun bool) string {
	if dryRun {
		return fmt.Sprintf("would replay %d dead letters (dry run: nothing published or removed)", s.Replayed)
	}
	moved := fmt.Sprintf(" (removed from %s)", cc.DLQStream)
	if keep {
		moved = fmt.Sprintf(" (kept in %s)", cc.DLQStream)
	}
	return fmt.Sprintf("replayed %d dead letters to %s%s, %d dropped by JetStream as duplicates within its duplicate window (kept: try again later), %d failed",
		s.Replayed, cc.Stream, moved, s.Duplicates, s.Failed)
}

// replayDeadLetters publishes the selected dead letters again. A dead
// letter that cannot be replayed is reported on o.Err and counted; the
// returned error is one that stops the whole run (the stream unreadable,
// the run stopped).
func replayDeadLetters(ctx context.Context, js jetstream.JetStream, cc config.ConsumerConfig, f *dlqFlags, keep, dryRun bool, o IO) (replayStats, error) {
	var st replayStats
	dlq, err := js.Stream(ctx, cc.DLQStream)
	if err != nil {
		return st, fmt.Errorf("dead-letter stream %s: %w", cc.DLQStream, err)
	}
	err = eachDeadLetter(ctx, js, cc.DLQStream, f, func(m *jetstream.RawStreamMsg) error {
		out, err := replayMsg(ctx, js, cc.Stream, m)
		if err != nil {
			st.Failed++
			fmt.Fprintf(o.Err, "dead letter %d: %v\n", m.Sequence, err)
			return ctx.Err()
		}
		if dryRun {
			st.Replayed++
			fmt.Fprintf(o.Out, "would replay %d (%s) to %s, id %s\n", m.Sequence, m.Header.Get(consumer.HeaderReason), out.Subject, out.Header.Get(jetstream.MsgIDHeader))
			return nil
		}
		ack, err := js.PublishMsg(ctx, out)
		if err != nil {
			st.Failed++
			fmt.Fprintf(o.Err, "dead letter %d: publish to %s: %v\n", m.Sequence, out.Subject, err)
			return ctx.Err()
		}
		if ack.Duplicate {
			st.Duplicates++
			return nil
		}
		st.Replayed++
		if keep {
			return nil
		}
		if err := dlq.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			st.Failed++
			fmt.Fprintf(o.Err, "dead letter %d: replayed (%s %d) but not removed: %v\n", m.Sequence, cc.Stream, ack.Sequence, err)
			return ctx.Err()
		}
		return nil
	})
	return st, err
}

// replayMsg is the message that publishes dead letter m again: its
// original subject and payload, and as Nats-Msg-Id the original one or,
// without one, the original's stream position (the event id the worker
// gave it).
func replayMsg(ctx context.Context, js jetstream.JetStream, stream string, m *jetstream.RawStreamMsg) (*nats.Msg, error) {
	h := m.Header
	subject := h.Get(consumer.HeaderSubject)
	if subject == "" {
		return nil, fmt.Errorf("no %s header: not a dead letter of incidentd", consumer.HeaderSubject)
	}
	position := h.Get(jetstream.MsgIDHeader)
	id := h.Get(consumer.HeaderMsgID)
	if id == "" {
		id = position
	}
	out := nats.NewMsg(subject)
	out.Data = m.Data
	if id != "" {
		out.Header.Set(jetstream.MsgIDHeader, id)
	}
	if at := letterReceivedAt(h, stream, position); at != "" {
		out.Header.Set(consumer.HeaderReceivedAt, at)
	}
	if h.Get(consumer.HeaderTruncated) == "" {
		return out, nil
	}
	data, err := original(ctx, js, stream, h.Get(consumer.HeaderStreamSeq), position)
	if err != nil {
		return nil, err
	}
	out.Data = data
	return out, nil
}

// letterReceivedAt is when JetStream first received a dead letter's event,
// for the worker to date an event without occurred_at by it rather than by
// the replay: the letter's HeaderReceivedAt, or for a letter written before
// that header, the timestamp in its position ("<stream>:<seq>:<ns>").
func letterReceivedAt(h nats.Header, stream, position string) string {
	if v := h.Get(consumer.HeaderReceivedAt); v != "" {
		return v
	}
	rest, ok := strings.CutPrefix(position, stream+":")
	if !ok {
		return ""
	}
	seq, ns, ok := strings.Cut(rest, ":")
	if _, err := strconv.ParseUint(seq, 10, 64); err != nil || !ok {
		return ""
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 {
		return ""
	}
	return time.Unix(0, n).UTC().Format(time.RFC3339Nano)
}

// original reads the whole payload of a truncated dead letter from the
// incident stream, if the message at seq is still the one at position.
func original(ctx context.Context, js jetstream.JetStream, stream, seq, position string) ([]byte, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("truncated, and stream %s: %w", stream, err)
	}
	var n uint64
	if _, err := fmt.Sscan(seq, &n); err != nil {
		return nil, fmt.Errorf("truncated, and no %s header", consumer.HeaderStreamSeq)
	}
	raw, err := s.GetMsg(ctx, n)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("truncated, and its original (%s %d) is gone from the stream", stream, n)
	}
	if err != nil {
		return nil, fmt.Errorf("truncated; read its original (%s %d): %w", stream, n, err)
	}
	meta := incident.Meta{Stream: stream, Sequence: raw.Sequence, Timestamp: raw.Time}
	if meta.Position() != position {
		return nil, fmt.Errorf("truncated, and %s %d is another message now (the stream was created again)", stream, n)
	}
	return raw.Data, nil
}
