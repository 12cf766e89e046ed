package incident

import (
	"slices"
	"time"
)

// Incident is what the stores keep: one incident per identity and quiet period,
// folded from any number of events. Its JSON (snake_case) is what the API, the
// CLI and Redis show.
type Incident struct {
	ID              string            `json:"id"`
	Fingerprint     string            `json:"fingerprint"`
	DedupKey        string            `json:"dedup_key,omitempty"`
	Title           string            `json:"title"`
	Description     string            `json:"description,omitempty"`
	Source          string            `json:"source"`
	Type            Type              `json:"type"`
	Severity        Severity          `json:"severity"`
	PeakSeverity    Severity          `json:"peak_severity"`
	State           State             `json:"state"`
	Resources       []string          `json:"resources"`
	Labels          map[string]string `json:"labels,omitempty"`
	FirstSeen       time.Time         `json:"first_seen"`
	LastSeen        time.Time         `json:"last_seen"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	OccurrenceCount int64             `json:"occurrence_count"`
	LateCount       int64             `json:"late_count,omitempty"`
	ReopenOf        string            `json:"reopen_of,omitempty"`
	ResolvedAt      *time.Time        `json:"resolved_at,omitempty"`
	ResolvedBy      ResolvedBy        `json:"resolved_by,omitempty"`
	AcknowledgedAt  *time.Time        `json:"acknowledged_at,omitempty"`
	LastValue       *float64          `json:"last_value,omitempty"`
	Unit            string            `json:"unit,omitempty"`
	// LatestEventAt and LatestEventID order the "changing fields": they follow
	// the trigger with the latest event time, the event id breaking ties.
	LatestEventAt time.Time `json:"latest_event_at"`
	LatestEventID string    `json:"latest_event_id"`
	// FirstReceivedAt is when JetStream stored the earliest trigger folded
	// into the incident (zero when unknown: imported, or written before it
	// was kept). Acknowledges and resolves received before it are not about
	// this incident: with several workers, a control event can be applied
	// after a trigger that followed it in the stream.
	FirstReceivedAt time.Time `json:"first_received_at,omitzero"`
	// ResolvedReceivedAt is when JetStream stored the resolve event that
	// resolved the incident (zero when it was not a resolve event, or is
	// unknown). A trigger received before it merges as into an open
	// incident, whichever worker commits first.
	ResolvedReceivedAt time.Time `json:"resolved_received_at,omitzero"`
	// LastReceivedAt is when JetStream stored the latest trigger folded into
	// the incident (zero when unknown). A resolve received before it, and
	// older than last_seen, was overtaken by a trigger another worker
	// committed first, and does not close the incident.
	LastReceivedAt time.Time `json:"last_received_at,omitzero"`
	// Version starts at 1 and grows by one on every write; stores use it for
	// optimistic concurrency.
	Version int64 `json:"version"`
}

// Clone returns a deep copy.
func (in *Incident) Clone() *Incident {
	if in == nil {
		return nil
	}
	c := *in
	c.Resources = slices.Clone(in.Resources)
	if in.Labels != nil {
		c.Labels = make(map[string]string, len(in.Labels))
		for k, v := range in.Labels {
			c.Labels[k] = v
		}
	}
	if in.ResolvedAt != nil {
		t := *in.ResolvedAt
		c.ResolvedAt = &t
	}
	if in.AcknowledgedAt != nil {
		t := *in.AcknowledgedAt
		c.AcknowledgedAt = &t
	}
	if in.LastValue != nil {
		v := *in.LastValue
		c.LastValue = &v
	}
	return &c
}

// Active reports whether the incident is in one of the four active states.
func (in *Incident) Active() bool { return in.State.Active() }
