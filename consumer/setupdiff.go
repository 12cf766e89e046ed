package consumer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What Setup manages in an existing stream or consumer. Every field that
// decides whether events are stored, kept and delivered as the worker
// expects is incidentd's: a difference is updated in place and named in
// the report. The rest (placement, metadata, deny_delete, compression, …)
// stays as the operator set it.

// unlimited is JetStream's "no limit" for message, byte and size limits.
const unlimited = -1

// limitText shows a JetStream limit.
func limitText[T int64 | int32](v T) string {
	if v < 0 {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// discardText shows a discard policy as nats stream info does.
func discardText(p jetstream.DiscardPolicy) string {
	if p == jetstream.DiscardNew {
		return "new"
	}
	return "old"
}

// differ appends "name have -> want" to d when have and want differ.
func differ(d []string, name string, have, want any) []string {
	if reflect.DeepEqual(have, want) {
		return d
	}
	return append(d, fmt.Sprintf("%s %v -> %v", name, have, want))
}

// streamDiff lists the managed fields in which have differs from want.
func streamDiff(have, want jetstream.StreamConfig) []string {
	var d []string
	if !slices.Equal(have.Subjects, want.Subjects) {
		d = append(d, fmt.Sprintf("subjects %v -> %v", have.Subjects, want.Subjects))
	}
	d = durDiff(d, "max_age", have.MaxAge, want.MaxAge)
	d = durDiff(d, "duplicate_window", have.Duplicates, want.Duplicates)
	d = differ(d, "replicas", have.Replicas, want.Replicas)
	d = differ(d, "max_msgs", limitText(have.MaxMsgs), limitText(want.MaxMsgs))
	d = differ(d, "max_bytes", limitText(have.MaxBytes), limitText(want.MaxBytes))
	d = differ(d, "max_msgs_per_subject", limitText(have.MaxMsgsPerSubject), limitText(want.MaxMsgsPerSubject))
	d = differ(d, "max_msg_size", limitText(have.MaxMsgSize), limitText(want.MaxMsgSize))
	d = differ(d, "discard", discardText(have.Discard), discardText(want.Discard))
	d = differ(d, "no_ack", have.NoAck, want.NoAck)
	d = differ(d, "allow_rollup_hdrs", have.AllowRollup, want.AllowRollup) // a Nats-Rollup header purges unconsumed events
	d = differ(d, "allow_msg_ttl", have.AllowMsgTTL, want.AllowMsgTTL)     // a Nats-TTL header expires an event before it is consumed
	return d
}

// mergeStream is have with the managed fields of want.
func mergeStream(have, want jetstream.StreamConfig) jetstream.StreamConfig {
	m := have
	m.Subjects, m.MaxAge, m.Duplicates, m.Replicas = want.Subjects, want.MaxAge, want.Duplicates, want.Replicas
	m.MaxMsgs, m.MaxBytes, m.MaxMsgsPerSubject, m.MaxMsgSize = want.MaxMsgs, want.MaxBytes, want.MaxMsgsPerSubject, want.MaxMsgSize
	m.Discard, m.NoAck, m.AllowRollup, m.AllowMsgTTL = want.Discard, want.NoAck, want.AllowRollup, want.AllowMsgTTL
	return m
}

// streamUnusable reports what makes an existing stream unable to take
// events whatever Setup updates: sealed, or a mirror. key names the
// configuration key that chooses the stream.
func streamUnusable(have jetstream.StreamConfig, key string) string {
	switch {
	case have.Sealed:
		return "is sealed: it accepts no new messages (remove the stream or use another " + key + ")"
	case have.Mirror != nil:
		return fmt.Sprintf("mirrors stream %s: it accepts no publishes (remove it or use another %s)", have.Mirror.Name, key)
	}
	return ""
}

// consumerDiff lists the managed fields in which have differs from want.
func consumerDiff(have, want jetstream.ConsumerConfig) []string {
	var d []string
	d = durDiff(d, "ack_wait", have.AckWait, want.AckWait)
	d = differ(d, "max_deliver", have.MaxDeliver, want.MaxDeliver)
	d = differ(d, "max_ack_pending", have.MaxAckPending, want.MaxAckPending)
	// 0 is one replica (or, on a replicated stream, as many as the stream:
	// written explicitly once Setup updates it).
	d = differ(d, "replicas", max(have.Replicas, 1), max(want.Replicas, 1))
	d = differ(d, "filter_subjects", filters(have), filters(want))
	d = differ(d, "backoff", have.BackOff, want.BackOff)
	d = differ(d, "headers_only", have.HeadersOnly, want.HeadersOnly)
	d = durDiff(d, "inactive_threshold", have.InactiveThreshold, want.InactiveThreshold)
	d = differ(d, "rate_limit_bps", have.RateLimit, want.RateLimit)
	d = differ(d, "max_batch", have.MaxRequestBatch, want.MaxRequestBatch)
	d = durDiff(d, "max_expires", have.MaxRequestExpires, want.MaxRequestExpires)
	d = differ(d, "max_bytes", have.MaxRequestMaxBytes, want.MaxRequestMaxBytes)
	if paused(have) {
		d = append(d, fmt.Sprintf("paused until %s -> not paused", have.PauseUntil.Format(time.RFC3339)))
	}
	return d
}

// paused reports whether a consumer is paused now.
func paused(c jetstream.ConsumerConfig) bool {
	return c.PauseUntil != nil && c.PauseUntil.After(time.Now())
}

// filters is a consumer's filter subjects, one list whichever field holds
// them (nil for none).
func filters(c jetstream.ConsumerConfig) []string {
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	if len(c.FilterSubjects) == 0 {
		return nil
	}
	return c.FilterSubjects
}

// mergeConsumer is have with the managed fields of want.
func mergeConsumer(have, want jetstream.ConsumerConfig) jetstream.ConsumerConfig {
	m := have
	m.AckWait, m.MaxDeliver, m.MaxAckPending, m.Replicas = want.AckWait, want.MaxDeliver, want.MaxAckPending, want.Replicas
	m.FilterSubject, m.FilterSubjects, m.BackOff, m.HeadersOnly = want.FilterSubject, want.FilterSubjects, want.BackOff, want.HeadersOnly
	m.InactiveThreshold, m.RateLimit, m.PauseUntil = want.InactiveThreshold, want.RateLimit, nil
	m.MaxRequestBatch, m.MaxRequestExpires, m.MaxRequestMaxBytes = want.MaxRequestBatch, want.MaxRequestExpires, want.MaxRequestMaxBytes
	return m
}

// errSubjectOverlap is JetStream's error code for a stream whose subjects
// overlap another stream's.
const errSubjectOverlap = 10065

// overlapping names, for a failed create, the existing stream that listens
// on one of want's subjects ("" when the error is another one or the
// stream cannot be found).
func overlapping(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, err error) string {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != errSubjectOverlap {
		return ""
	}
	for _, subj := range want.Subjects {
		var others []string
		for name := range js.StreamNames(ctx, jetstream.WithStreamListSubject(subj)).Name() { // read to the end: the lister's goroutine sends them all
			if name != want.Name {
				others = append(others, name)
			}
		}
		for _, name := range others {
			if other, err := js.Stream(ctx, name); err == nil {
				return fmt.Sprintf(" (stream %s, on %v, overlaps %s)", name, other.CachedInfo().Config.Subjects, subj)
			}
			return fmt.Sprintf(" (stream %s overlaps %s)", name, subj)
		}
	}
	return ""
}
