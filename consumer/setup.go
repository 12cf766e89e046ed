package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/config"
)

// ErrMismatch is returned by Setup when an existing stream or consumer
// differs from the configuration in a way JetStream cannot update in place.
var ErrMismatch = errors.New("consumer: existing JetStream object does not match the configuration")

// Report says what Setup did, one line per stream or consumer, such as
// "stream INCIDENTS updated: max_age 24h -> 168h".
type Report struct {
	Actions []string
	// ConsumerCreated: this call created the durable consumer (it did not
	// exist). Another worker finding it there finds it unchanged.
	ConsumerCreated bool
}

// created reports whether a setup action created its object.
func created(action string) bool { return strings.HasSuffix(action, " created") }

// StreamConfig is the incident stream the configuration asks for: file
// storage, limits retention, a Nats-Msg-Id duplicate window and a maximum age.
func StreamConfig(cfg config.ConsumerConfig) jetstream.StreamConfig {
	return fileStream(cfg, cfg.Stream, "incident events from publishers, consumed by incidentd", slices.Clone(cfg.Subjects))
}

// DLQStreamConfig is the dead-letter stream: every subject below
// dlq_subject_prefix, with the incident stream's storage and limits.
func DLQStreamConfig(cfg config.ConsumerConfig) jetstream.StreamConfig {
	return fileStream(cfg, cfg.DLQStream, "incident events incidentd could not process, with the reason in headers",
		[]string{cfg.DLQSubjectPrefix + ".>"})
}

// fileStream is a file-stored, limits-retention stream with the configured
// maximum age, duplicate window and replicas.
func fileStream(cfg config.ConsumerConfig, name, desc string, subjects []string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: desc,
		Subjects:    subjects,
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.MaxAge.Duration,
		Duplicates:  cfg.DuplicateWindow.Duration,
		Replicas:    cfg.Replicas,
		Discard:     jetstream.DiscardOld,
		// No count or size limit: one would drop (or refuse) events the
		// consumer has not taken yet.
		MaxMsgs: unlimited, MaxBytes: unlimited, MaxMsgsPerSubject: unlimited, MaxMsgSize: unlimited,
	}
}

// ConsumerConfig is the durable pull consumer every worker shares: explicit
// acks, AckWait, MaxDeliver and MaxAckPending from the configuration.
func ConsumerConfig(cfg config.ConsumerConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "incidentd workers (shared durable pull consumer)",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait.Duration,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		Replicas:      cfg.Replicas,
	}
}

// Setup creates or updates the incident stream, the dead-letter stream, the
// durable consumer, and the stream and consumer of the max-deliveries
// advisories (see MaxDeliveriesStreamConfig). A difference JetStream cannot apply in place (storage
// type, retention, ack or deliver policy) is an ErrMismatch naming the field,
// the existing value and the wanted one. It is what the worker runs at start
// and what `incidentctl setup` runs as a deploy step.
func Setup(ctx context.Context, js jetstream.JetStream, cfg config.ConsumerConfig) (Report, error) {
	var rep Report
	for _, sc := range []jetstream.StreamConfig{StreamConfig(cfg), DLQStreamConfig(cfg)} {
		act, err := setupStream(ctx, js, sc, streamKey(cfg, sc.Name))
		if err != nil {
			return rep, err
		}
		rep.Actions = append(rep.Actions, act)
	}
	act, err := setupConsumer(ctx, js, cfg.Stream, ConsumerConfig(cfg))
	if err != nil {
		return rep, err
	}
	rep.Actions = append(rep.Actions, act)
	rep.ConsumerCreated = created(act)
	acts, err := setupMaxDeliveries(ctx, js, cfg)
	if err != nil {
		return rep, err
	}
	rep.Actions = append(rep.Actions, acts...)
	return rep, nil
}

// setupStream creates or updates want; key is the configuration key that
// names it, for the advice in a mismatch.
func setupStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, key string) (string, error) {
	what := "stream " + want.Name
	s, err := js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, want); err != nil {
			return "", fmt.Errorf("create %s%s%s: %w", what, overlapping(ctx, js, want, err), why(js, err), err)
		}
		return what + " created", nil
	case err != nil:
		return "", fmt.Errorf("look up %s%s: %w", what, why(js, err), err)
	}
	have := s.CachedInfo().Config
	if have.Storage != want.Storage {
		return "", fmt.Errorf("%w: %s has storage %s, want %s (storage cannot change: remove the stream or use another %s)", ErrMismatch, what, have.Storage, want.Storage, key)
	}
	if have.Retention != want.Retention {
		return "", fmt.Errorf("%w: %s has retention %s, want %s (retention cannot change: remove the stream or use another %s)", ErrMismatch, what, have.Retention, want.Retention, key)
	}
	if why := streamUnusable(have, key); why != "" {
		return "", fmt.Errorf("%w: %s %s", ErrMismatch, what, why)
	}
	diff := streamDiff(have, want)
	if len(diff) == 0 {
		return what + " unchanged", nil
	}
	got, err := js.UpdateStream(ctx, mergeStream(have, want))
	if err != nil {
		if o := overlapping(ctx, js, want, err); o != "" {
			return "", fmt.Errorf("%w: update %s%s: %w", ErrMismatch, what, o, err)
		}
		return "", fmt.Errorf("%w: update %s (%v): %w", ErrMismatch, what, diff, err)
	}
	// The server may keep a setting without an error (allow_rollup_hdrs
	// stays on while allow_msg_schedules is): check what it answered.
	if kept := streamDiff(got.CachedInfo().Config, want); len(kept) > 0 {
		return "", fmt.Errorf("%w: %s still has %v after the update: the server would not change it (remove the stream or use another %s)",
			ErrMismatch, what, kept, key)
	}
	return what + " updated: " + strings.Join(diff, ", "), nil
}

func durDiff(d []string, name string, have, want time.Duration) []string {
	if have != want {
		d = append(d, fmt.Sprintf("%s %s -> %s", name, have, want))
	}
	return d
}

func setupConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (string, error) {
	what := fmt.Sprintf("consumer %s on stream %s", want.Durable, stream)
	c, err := js.Consumer(ctx, stream, want.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if _, err := js.CreateConsumer(ctx, stream, want); err != nil {
			return "", fmt.Errorf("create %s%s: %w", what, why(js, err), err)
		}
		return what + " created", nil
	case err != nil:
		return "", fmt.Errorf("look up %s%s: %w", what, why(js, err), err)
	}
	have := c.CachedInfo().Config
	if have.AckPolicy != want.AckPolicy {
		return "", fmt.Errorf("%w: %s has ack policy %s, want %s", ErrMismatch, what, have.AckPolicy, want.AckPolicy)
	}
	if have.DeliverSubject != "" {
		return "", fmt.Errorf("%w: %s is a push consumer (deliver subject %q), want a pull consumer", ErrMismatch, what, have.DeliverSubject)
	}
	if have.DeliverPolicy != want.DeliverPolicy {
		return "", fmt.Errorf("%w: %s has deliver policy %s, want %s", ErrMismatch, what, have.DeliverPolicy, want.DeliverPolicy)
	}
	d := consumerDiff(have, want)
	if len(d) == 0 {
		return what + " unchanged", nil
	}
	got, err := updateConsumer(ctx, js, stream, mergeConsumer(have, want))
	if err != nil {
		return "", fmt.Errorf("%w: update %s (%v): %w", ErrMismatch, what, d, err)
	}
	// Read the consumer again rather than trust the update's answer: the
	// first create or update a consumer sees after nats-server (re)starts
	// is answered with the consumer as it was when the server started.
	now, err := got.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("read %s after the update: %w", what, err)
	}
	if kept := consumerDiff(now.Config, want); len(kept) > 0 && !(len(kept) == 1 && paused(have)) {
		return "", fmt.Errorf("%w: %s still has %v after the update: the server would not change it", ErrMismatch, what, kept)
	}
	if paused(have) { // an update does not end a pause
		if _, err := js.ResumeConsumer(ctx, stream, want.Durable); err != nil {
			return "", fmt.Errorf("resume %s: %w", what, err)
		}
	}
	return what + " updated: " + strings.Join(d, ", "), nil
}

// errReplicasExceedStream is JetStream's error code for a consumer with more
// replicas than its stream has.
const errReplicasExceedStream = 10126

// updateConsumer updates a consumer; when its stream's replicas were just
// raised, the cluster may not have applied that yet, so a consumer update
// refused for exceeding the stream's replicas is tried again for up to 10 s.
func updateConsumer(ctx context.Context, js jetstream.JetStream, stream string, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := js.UpdateConsumer(ctx, stream, cc)
		var api *jetstream.APIError
		if err == nil || !errors.As(err, &api) || api.ErrorCode != errReplicasExceedStream || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// streamKey is the configuration key that names the stream called name:
// consumer.dlq_stream for the dead letters', consumer.stream for the
// incidents' and for the max-deliveries stream named after it.
func streamKey(cfg config.ConsumerConfig, name string) string {
	if name == cfg.DLQStream {
		return "consumer.dlq_stream"
	}
	return "consumer.stream"
}

// why says what a JetStream request that got no answer most likely met: a
// server without JetStream (no responders), or a permission the server
// refused (the request times out; the refusal came to the connection as
// an asynchronous error).
func why(js jetstream.JetStream, err error) string {
	switch {
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
		return " (no JetStream answered: is JetStream enabled on the server? nats-server -js, or a jetstream block in its configuration)"
	case errors.Is(err, context.DeadlineExceeded):
		if last := js.Conn().LastError(); last != nil && strings.Contains(strings.ToLower(last.Error()), "permissions violation") {
			return " (the server refused a permission: " + last.Error() + ")"
		}
	}
	return ""
}
