// Package metrics is the worker's observability surface: the Prometheus
// collectors every pipeline stage updates (events received, decoded, invalid,
// dead-lettered, applied, duplicates, incident transitions, batches, flush
// duration, lag, store size, incidents by state), the readiness checks, and
// the /metrics, /healthz and /readyz endpoints. Every series exists from the start, so a
// fresh worker reads zero rather than "no data".
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// Namespace prefixes every metric name.
const Namespace = "incidentd"

// Label values of incidentd_events_duplicate_total{kind}.
const (
	// DuplicateEventID counts events whose id was already applied (a
	// redelivery or a producer retry): they change nothing.
	DuplicateEventID = "event_id"
	// DuplicateMerged counts triggers folded into an open incident of the
	// same identity.
	DuplicateMerged = "merged"
)

// NATSErrorKinds are the label values of incidentd_nats_errors_total{kind}.
var NATSErrorKinds = []string{NATSSlowConsumer, NATSMissedHeartbeat, NATSPermission, NATSAuth, NATSDisconnected, NATSOther}

// Kinds of NATS client errors.
const (
	NATSSlowConsumer    = "slow_consumer"
	NATSMissedHeartbeat = "missed_heartbeat"
	NATSPermission      = "permission"
	// NATSAuth counts logins the server refused (authorization violation,
	// expired or revoked credentials), one per reconnection attempt.
	NATSAuth = "auth"
	// NATSDisconnected counts losses of the connection to NATS (the
	// "nats disconnected" warning).
	NATSDisconnected = "disconnected"
	NATSOther        = "other"
)

// NATSErrorKind classifies an asynchronous NATS client error.
func NATSErrorKind(err error) string {
	switch {
	case errors.Is(err, nats.ErrSlowConsumer):
		return NATSSlowConsumer
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		return NATSMissedHeartbeat
	case errors.Is(err, nats.ErrPermissionViolation):
		return NATSPermission
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		return NATSAuth
	}
	return NATSOther
}

// JetStream objects the worker can find missing and set up again: the
// label values of incidentd_jetstream_recreated_total{object}.
const (
	// RecreatedConsumer: the durable consumer (or its stream, or the
	// server's JetStream state) was gone.
	RecreatedConsumer = "consumer"
	// RecreatedDeadLetterStream: the dead-letter stream was gone.
	RecreatedDeadLetterStream = "dead_letter_stream"
	// RecreatedMaxDeliveries: the max-deliveries advisory stream or its
	// consumer was gone.
	RecreatedMaxDeliveries = "max_deliveries"
)

// RecreatedObjects are the label values of
// incidentd_jetstream_recreated_total{object}.
var RecreatedObjects = []string{RecreatedConsumer, RecreatedDeadLetterStream, RecreatedMaxDeliveries}

// How a write whose answer was lost was settled: the label values of
// incidentd_writes_unanswered_total{outcome}.
const (
	// WriteApplied: the write had run; its batch counts as committed.
	WriteApplied = "applied"
	// WriteAbandoned: the write was claimed before it ran and never will;
	// the batch is read, folded and written again.
	WriteAbandoned = "abandoned"
)

// WriteOutcomes are the label values of
// incidentd_writes_unanswered_total{outcome}.
var WriteOutcomes = []string{WriteApplied, WriteAbandoned}

// LatencyBuckets are the end-to-end latency histogram's bounds, in seconds:
// fine around the 50 ms objective, up to an hour of backlog. Past 10 s (the
// IncidentdEndToEndLatencyHigh threshold) no bound is more than 1.5 times
// the one before (2 at most from 300 s), so a p99 read from them while a
// backlog drains is off by less than that, not 5x between 60 and 300 s.
var LatencyBuckets = []float64{0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
	0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300,
	600, 900, 1800, 3600}

// FlushBuckets are the flush-duration histogram's bounds, in seconds:
// 0.5 ms doubling to 16.384 s, with 1 s added. IncidentdSlowCommits compares
// a p99 with 1 s: histogram_quantile interpolates inside the bucket holding
// the rank, so a threshold inside a bucket ((0.512, 1.024] before 1 was
// added) fired with no commit over 1 s once a fifth of them took over
// 0.512 s. A threshold that is a bound reads true only when over 1 % of
// the commits took longer.
var FlushBuckets = func() []float64 {
	b := prometheus.ExponentialBuckets(0.0005, 2, 16)
	i, _ := slices.BinarySearch(b, 1)
	return slices.Insert(b, i, 1)
}()

// Label values of incidentd_commit_errors_total{reason}: what the store
// answered a failed batch commit attempt.
const (
	// CommitErrorOOM: Redis at maxmemory refused the write ("OOM command
	// not allowed when used memory > 'maxmemory'").
	CommitErrorOOM = "oom"
	// CommitErrorReadOnly: Redis answered READONLY (a replica, mid
	// failover).
	CommitErrorReadOnly = "readonly"
	// CommitErrorTimeout: the store did not answer in time (a deadline, a
	// network timeout).
	CommitErrorTimeout = "timeout"
	// CommitErrorOther: anything else.
	CommitErrorOther = "other"
)

// CommitErrorReasons are the label values of
// incidentd_commit_errors_total{reason}.
var CommitErrorReasons = []string{CommitErrorOOM, CommitErrorReadOnly, CommitErrorTimeout, CommitErrorOther}

// CommitErrorReason classifies the error of a failed batch commit attempt
// as one of CommitErrorReasons. Redis errors are read from their text (the
// store wraps them; go-redis's error type is not needed here).
func CommitErrorReason(err error) string {
	if err == nil {
		return CommitErrorOther
	}
	msg := err.Error()
	var ne net.Error
	switch {
	case strings.Contains(msg, "OOM command not allowed"):
		return CommitErrorOOM
	case strings.Contains(msg, "READONLY "):
		return CommitErrorReadOnly
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return CommitErrorTimeout
	}
	return CommitErrorOther
}

// Build describes the running binary for incidentd_build_info.
type Build struct {
	Version string
}

// Metrics holds every collector of the worker.
type Metrics struct {
	EventsReceived     prometheus.Counter
	EventsDecoded      prometheus.Counter
	EventsInvalid      *prometheus.CounterVec
	EventsDeadLettered *prometheus.CounterVec
	// DeadLetterFailures counts dead-letter publishes that failed, by
	// reason; the message is tried again (redelivered, or for max_deliver
	// retried by the worker).
	DeadLetterFailures *prometheus.CounterVec
	// DeadLettersAbandoned counts messages given up without a dead letter
	// after retries, by reason; each stays in the stream, at the sequence
	// the error log names, until consumer.max_age.
	DeadLettersAbandoned *prometheus.CounterVec
	EventsApplied        prometheus.Counter
	EventsDuplicate      *prometheus.CounterVec
	EventsLate           prometheus.Counter
	EventsOrphaned       prometheus.Counter
	EventsDeferred       prometheus.Counter
	// EventsInherited counts the messages a starting worker read from the
	// stream itself before pulling, because they were delivered before it
	// started and still un-acked (a stopped worker's batch in flight).
	EventsInherited prometheus.Counter
	// EventsReadAhead counts the events a worker read from the stream and
	// committed ahead of their delivery to it, so that an acknowledge or
	// resolve at its final delivery acts after them (consumer.read_ahead).
	EventsReadAhead prometheus.Counter
	// PeersLost counts the other workers of the consumer found silent
	// without having said goodbye (consumer.read_ahead).
	PeersLost prometheus.Counter
	// PeersStuck counts the other workers of the consumer heard saying
	// they cannot commit: their store failing, or their commit under way
	// running for a second (consumer.read_ahead).
	PeersStuck prometheus.Counter

	IncidentsOpened       prometheus.Counter
	IncidentsReopened     prometheus.Counter
	IncidentsAcknowledged prometheus.Counter
	IncidentsResolved     *prometheus.CounterVec
	// IncidentsOperatorTransitions counts operators' state changes
	// through the API, by target state (incident.OperatorTargets).
	IncidentsOperatorTransitions *prometheus.CounterVec

	BatchesCommitted prometheus.Counter
	BatchesFailed    prometheus.Counter
	// CommitErrors counts the same failed attempts as BatchesFailed, by
	// what the store answered (CommitErrorReasons).
	CommitErrors   *prometheus.CounterVec
	StoreConflicts prometheus.Counter
	// BatchesRefolded counts prepared folds discarded and redone on a
	// fresh read because the batch before was folded again.
	BatchesRefolded prometheus.Counter
	FlushDuration   prometheus.Histogram
	BatchSize       prometheus.Histogram
	EndToEndLatency prometheus.Histogram

	ConsumerPending    prometheus.Gauge
	ConsumerAckPending prometheus.Gauge
	// ConsumerMaxAckPending is the consumer's max_ack_pending as JetStream
	// has it; ConsumerAckPendingLimit counts the spells in which a worker
	// saw num_ack_pending reach it (JetStream then delivers to no worker).
	ConsumerMaxAckPending   prometheus.Gauge
	ConsumerAckPendingLimit prometheus.Counter
	ConsumerRedelivered     prometheus.Gauge
	StoreSize               prometheus.Gauge
	StoreIncidents          prometheus.Gauge
	// StoreIncidentsByState holds the store's incidents per state (label
	// state: the six of incident.States), sampled with StoreIncidents; the
	// four active states summed are the open incidents.
	StoreIncidentsByState *prometheus.GaugeVec

	// NATSErrors counts the NATS client's asynchronous errors by kind
	// (NATSErrorKinds); a slow consumer means the client dropped messages,
	// which JetStream redelivers only after ack_wait.
	NATSErrors *prometheus.CounterVec
	// AcksFailed counts acks the client could not send after a commit; the
	// message is redelivered after ack_wait and absorbed as a duplicate.
	AcksFailed prometheus.Counter
	// StoreUnreachable counts the times the store stopped answering the
	// worker's readiness probe (a Redis PING each lag poll): one per outage,
	// not one per failed probe.
	StoreUnreachable prometheus.Counter
	// JetStreamRecreated counts JetStream objects found missing and set
	// up again, by object (RecreatedObjects).
	JetStreamRecreated *prometheus.CounterVec
	// PullRestarts counts pulling ending and being set up anew (after a
	// lost consumer, or the connection to NATS closed).
	PullRestarts prometheus.Counter
	// WritesUnanswered counts batch writes whose answer was lost (a Redis
	// stall longer than read_timeout), by how settling them ended
	// (WriteOutcomes): applied, the write had run and its batch counts as
	// committed; abandoned, it was claimed before it ran and the batch is
	// written again.
	WritesUnanswered *prometheus.CounterVec
	// SweepFailures counts quiet-period sweeps and retention prunes that
	// failed (the store could not be read or written); the next sweep
	// tries again.
	SweepFailures prometheus.Counter
	// IncidentsPruned counts inactive incidents deleted by the sweep past
	// state.incident_retention.
	IncidentsPruned prometheus.Counter

	// Health backs incidentd_ready and /readyz.
	Health *Health
}

// New creates every collector, pre-creates every label value and registers
// them on reg.
func New(reg prometheus.Registerer, build Build) (*Metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	}
	m := &Metrics{
		EventsReceived: counter("events_received_total", "Messages fetched from the incident stream (redeliveries included)."),
		EventsDecoded:  counter("events_decoded_total", "Messages decoded into valid events."),
		EventsInvalid: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_invalid_total",
			Help: "Messages rejected by decoding or validation, by reason."}, []string{"reason"}),
		EventsDeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_dead_lettered_total",
			Help: "Messages published to the dead-letter stream and terminated, by reason."}, []string{"reason"}),
		DeadLetterFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dead_letter_failures_total",
			Help: "Dead-letter publishes that failed, by reason; the message is tried again."}, []string{"reason"}),
		DeadLettersAbandoned: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dead_letters_abandoned_total",
			Help: "Messages given up without a dead letter after max_deliver and retries, by reason; each stays in the stream until consumer.max_age (the error log names its sequence)."}, []string{"reason"}),
		EventsApplied: counter("events_applied_total", "Events applied to the store (each event id once)."),
		EventsDuplicate: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_duplicate_total",
			Help: "Duplicates absorbed: kind=event_id for already-applied event ids, kind=merged for triggers merged into an open incident."}, []string{"kind"}),
		EventsLate:     counter("events_late_total", "Triggers older than the resolution of their incident, merged into it as late."),
		EventsOrphaned: counter("events_orphaned_total", "Acknowledge and resolve events with no open incident of their identity."),
		EventsDeferred: counter("events_deferred_total",
			"Acknowledge and resolve events with no incident to act on yet, redelivered after consumer.orphan_retry_delay (another pod may hold the trigger they follow)."),
		EventsInherited: counter("events_inherited_total",
			"Messages a starting worker read from the stream and committed before pulling: delivered before it started and still un-acked (a stopped worker's batch in flight)."),
		PeersLost: counter("peers_lost_total",
			"Other workers of the consumer that went silent without stopping (a crash, a killed pod): reading ahead is on for ack_wait after (consumer.read_ahead)."),
		PeersStuck: counter("peers_stuck_total",
			"Other workers of the consumer that said they cannot commit (their store failing, or their commit under way running for a second), holding their messages: reading ahead is on while they say so and for ack_wait after (consumer.read_ahead)."),
		EventsReadAhead: counter("events_read_ahead_total",
			"Events read from the stream and committed ahead of their delivery to this worker (consumer.read_ahead): the earlier events of an acknowledge's or resolve's identity still un-acked at its final delivery (another pod holds them, or died holding them)."),
		IncidentsOpened:       counter("incidents_opened_total", "Incidents opened (reopens included)."),
		IncidentsReopened:     counter("incidents_reopened_total", "Incidents opened for an identity whose previous incident was resolved."),
		IncidentsAcknowledged: counter("incidents_acknowledged_total", "Incidents moved from Detected to Triaged by an acknowledge event."),
		IncidentsResolved: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "incidents_resolved_total",
			Help: "Incidents resolved, by what resolved them (event, timeout, or operator: an operator's Resolved or Closed of an active incident)."}, []string{"resolved_by"}),
		IncidentsOperatorTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "incidents_operator_transitions_total",
			Help: "Operators' state changes through this worker's API, by the state set (requests that changed nothing excluded)."}, []string{"to"}),
		BatchesCommitted: counter("batches_committed_total", "Batches durably committed to the store and acked."),
		BatchesFailed:    counter("batches_failed_total", "Batch commit attempts that failed (each retry counts)."),
		CommitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "commit_errors_total",
			Help: "Batch commit attempts that failed, by what the store answered: oom (Redis at maxmemory), readonly (a Redis replica), timeout, other; they sum to incidentd_batches_failed_total."}, []string{"reason"}),
		StoreConflicts:  counter("store_conflicts_total", "Optimistic-concurrency conflicts resolved by re-reading and folding again."),
		BatchesRefolded: counter("batches_refolded_total", "Batches read and folded again before their write because the batch before them was folded again (a conflict, a store failure)."),
		FlushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "flush_duration_seconds",
			Help:    "Time to commit one batch durably, from its first read to its durable write: lookup, fold, apply, and every failed attempt and backoff before it (a batch retried through a store outage records the outage).",
			Buckets: FlushBuckets}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "batch_size_events",
			Help:    "Valid events per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		EndToEndLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "end_to_end_latency_seconds",
			Help:    "Commit time minus the message's JetStream timestamp, per event the commit applied (merges included; event-id duplicates, such as a replay of events already applied, and deferred events are not observed).",
			Buckets: LatencyBuckets}),
		ConsumerPending:       gauge("consumer_pending_messages", "Messages in the stream not yet delivered to the consumer (num_pending)."),
		ConsumerAckPending:    gauge("consumer_ack_pending_messages", "Messages delivered but not yet acked (num_ack_pending)."),
		ConsumerMaxAckPending: gauge("consumer_max_ack_pending_messages", "The consumer's max_ack_pending as JetStream has it: at num_ack_pending this high, it delivers to no worker."),
		ConsumerAckPendingLimit: counter("consumer_ack_pending_limit_total",
			"Times this worker found num_ack_pending at max_ack_pending (the 'max_ack_pending reached' warning): JetStream delivered to no worker of the consumer until acks came back."),
		ConsumerRedelivered: gauge("consumer_redelivered_messages", "JetStream's num_redelivered: messages delivered more than once and not acked or terminated, including those past max_deliver until they leave the stream."),
		StoreSize:           gauge("store_size_bytes", "Size of the store on the worker's disk (0 for memory and Redis, whose data lives in Redis)."),
		StoreIncidents:      gauge("store_incidents", "Incidents in the store."),
		StoreIncidentsByState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "store_incidents_by_state",
			Help: "Incidents in the store by state; Detected, Triaged, Investigating and Remediating are the open ones."}, []string{"state"}),
		NATSErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "nats_errors_total",
			Help: "Errors of the NATS client and of the pull, by kind (slow_consumer: messages dropped in the client; missed_heartbeat: a pull request went silent, not produced since requests last a second; permission: the server refused a publish or subscribe; auth: the server refused the credentials at a reconnection; disconnected: the connection to NATS was lost)."}, []string{"kind"}),
		AcksFailed: counter("acks_failed_total", "Acks that could not be sent after a durable commit (the message is redelivered and absorbed as a duplicate)."),
		StoreUnreachable: counter("store_unreachable_total",
			"Times the store stopped answering the readiness probe (a Redis PING each consumer.lag_poll_interval): one per outage, not per failed probe."),
		JetStreamRecreated: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "jetstream_recreated_total",
			Help: "JetStream objects the worker found missing and set up again, by object (consumer, dead_letter_stream, max_deliveries)."}, []string{"object"}),
		PullRestarts: counter("pull_restarts_total", "Times pulling ended (the consumer lost, the connection to NATS closed) and was set up anew."),
		WritesUnanswered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "writes_unanswered_total",
			Help: "Batch writes whose answer was lost (a Redis stall longer than read_timeout), by how settling them ended: applied (the write had run) or abandoned (claimed before it ran; the batch is written again)."}, []string{"outcome"}),
		SweepFailures: counter("sweep_failures_total", "Quiet-period sweeps and retention prunes that failed; the next sweep tries again."),
		IncidentsPruned: counter("incidents_pruned_total",
			"Resolved and Closed incidents deleted by the sweep because their last event and last change are older than state.incident_retention."),
		Health: NewHealth(),
	}
	for _, r := range CommitErrorReasons {
		m.CommitErrors.WithLabelValues(r)
	}
	for _, o := range WriteOutcomes {
		m.WritesUnanswered.WithLabelValues(o)
	}
	for _, o := range RecreatedObjects {
		m.JetStreamRecreated.WithLabelValues(o)
	}
	for _, k := range NATSErrorKinds {
		m.NATSErrors.WithLabelValues(k)
	}
	for _, r := range incident.DecodeReasons {
		m.EventsInvalid.WithLabelValues(string(r))
	}
	for _, r := range incident.Reasons {
		m.EventsDeadLettered.WithLabelValues(string(r))
		m.DeadLetterFailures.WithLabelValues(string(r))
		m.DeadLettersAbandoned.WithLabelValues(string(r))
	}
	m.EventsDuplicate.WithLabelValues(DuplicateEventID)
	m.EventsDuplicate.WithLabelValues(DuplicateMerged)
	for _, by := range []incident.ResolvedBy{incident.ResolvedByEvent, incident.ResolvedByTimeout, incident.ResolvedByOperator} {
		m.IncidentsResolved.WithLabelValues(string(by))
	}
	for _, to := range incident.OperatorTargets {
		m.IncidentsOperatorTransitions.WithLabelValues(to.String())
	}
	for _, st := range incident.States {
		m.StoreIncidentsByState.WithLabelValues(st.String())
	}
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "ready",
		Help: "1 when the worker is ready (NATS connected, consumer bound, store writable), else 0."},
		func() float64 {
			if m.Health.Ready() == nil {
				return 1
			}
			return 0
		})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help: "Always 1; labels carry the version and the Go version."}, []string{"version", "goversion"})
	info.WithLabelValues(build.Version, runtime.Version()).Set(1)

	cs := []prometheus.Collector{m.EventsReceived, m.EventsDecoded, m.EventsInvalid, m.EventsDeadLettered, m.DeadLetterFailures, m.DeadLettersAbandoned,
		m.EventsApplied, m.EventsDuplicate, m.EventsLate, m.EventsOrphaned, m.EventsDeferred, m.EventsInherited, m.EventsReadAhead, m.PeersLost, m.PeersStuck, m.IncidentsOpened,
		m.IncidentsReopened, m.IncidentsAcknowledged, m.IncidentsResolved, m.IncidentsOperatorTransitions, m.BatchesCommitted,
		m.BatchesFailed, m.CommitErrors, m.StoreConflicts, m.BatchesRefolded, m.FlushDuration, m.BatchSize, m.EndToEndLatency,
		m.ConsumerPending, m.ConsumerAckPending, m.ConsumerMaxAckPending, m.ConsumerAckPendingLimit, m.ConsumerRedelivered, m.StoreSize, m.StoreIncidents,
		m.StoreIncidentsByState, m.NATSErrors, m.AcksFailed, m.StoreUnreachable, m.JetStreamRecreated, m.PullRestarts, m.WritesUnanswered, m.SweepFailures, m.IncidentsPruned, ready, info}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics register: %w", err)
		}
	}
	return m, nil
}

// ObserveFold adds what one committed fold did.
func (m *Metrics) ObserveFold(st dedupe.Stats) {
	m.EventsApplied.Add(float64(st.Applied))
	m.EventsDuplicate.WithLabelValues(DuplicateEventID).Add(float64(st.Duplicates))
	m.EventsDuplicate.WithLabelValues(DuplicateMerged).Add(float64(st.Merged))
	m.EventsLate.Add(float64(st.Late))
	m.EventsOrphaned.Add(float64(st.Orphans))
	m.EventsDeferred.Add(float64(st.Deferred))
	m.IncidentsOpened.Add(float64(st.Opened))
	m.IncidentsReopened.Add(float64(st.Reopened))
	m.IncidentsAcknowledged.Add(float64(st.Acknowledged))
	m.IncidentsResolved.WithLabelValues(string(incident.ResolvedByEvent)).Add(float64(st.Resolved))
	m.IncidentsResolved.WithLabelValues(string(incident.ResolvedByTimeout)).Add(float64(st.TimedOut))
}

// ObserveOperator counts an operator's state change from from to to: one
// transition, and a resolution by the operator when it ended an active
// incident (to Resolved or Closed; closing a resolved incident is no new
// resolution).
func (m *Metrics) ObserveOperator(from, to incident.State) {
	m.IncidentsOperatorTransitions.WithLabelValues(to.String()).Inc()
	if from.Active() && !to.Active() {
		m.IncidentsResolved.WithLabelValues(string(incident.ResolvedByOperator)).Inc()
	}
}

// CommitFailed counts one failed batch commit attempt with its error.
func (m *Metrics) CommitFailed(err error) {
	m.BatchesFailed.Inc()
	m.CommitErrors.WithLabelValues(CommitErrorReason(err)).Inc()
}

// ObserveLatency records the end-to-end latency of one event committed at
// now that JetStream stored at published.
func (m *Metrics) ObserveLatency(published, now time.Time) {
	if published.IsZero() {
		return
	}
	m.EndToEndLatency.Observe(max(now.Sub(published), 0).Seconds())
}
