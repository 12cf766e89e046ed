package incident

import "time"

// View is an incident as the API and incidentctl show it: the stored
// incident's JSON with every field present, so a reader never meets a
// missing key. What is unset is null (dedup_key, description, reopen_of,
// resolved_at, resolved_by, acknowledged_at, last_value, unit,
// first_received_at, resolved_received_at, last_received_at), resources is [] and labels {} when there are none,
// late_count 0. Decoding a View's
// JSON into an Incident gives the incident back.
type View struct {
	ID                 string            `json:"id"`
	Fingerprint        string            `json:"fingerprint"`
	DedupKey           *string           `json:"dedup_key"`
	Title              string            `json:"title"`
	Description        *string           `json:"description"`
	Source             string            `json:"source"`
	Type               Type              `json:"type"`
	Severity           Severity          `json:"severity"`
	PeakSeverity       Severity          `json:"peak_severity"`
	State              State             `json:"state"`
	Resources          []string          `json:"resources"`
	Labels             map[string]string `json:"labels"`
	FirstSeen          time.Time         `json:"first_seen"`
	LastSeen           time.Time         `json:"last_seen"`
	CreatedAt          time.Time         `json:"created_at"`
	UpdatedAt          time.Time         `json:"updated_at"`
	OccurrenceCount    int64             `json:"occurrence_count"`
	LateCount          int64             `json:"late_count"`
	ReopenOf           *string           `json:"reopen_of"`
	ResolvedAt         *time.Time        `json:"resolved_at"`
	ResolvedBy         *ResolvedBy       `json:"resolved_by"`
	AcknowledgedAt     *time.Time        `json:"acknowledged_at"`
	LastValue          *float64          `json:"last_value"`
	Unit               *string           `json:"unit"`
	LatestEventAt      time.Time         `json:"latest_event_at"`
	LatestEventID      string            `json:"latest_event_id"`
	FirstReceivedAt    *time.Time        `json:"first_received_at"`
	ResolvedReceivedAt *time.Time        `json:"resolved_received_at"`
	LastReceivedAt     *time.Time        `json:"last_received_at"`
	Version            int64             `json:"version"`
}

// NewView returns the view of in; it shares in's slices, maps and
// pointers, which it never changes.
func NewView(in *Incident) View {
	v := View{
		ID: in.ID, Fingerprint: in.Fingerprint, DedupKey: orNull(in.DedupKey), Title: in.Title,
		Description: orNull(in.Description), Source: in.Source, Type: in.Type, Severity: in.Severity,
		PeakSeverity: in.PeakSeverity, State: in.State, Resources: in.Resources, Labels: in.Labels,
		FirstSeen: in.FirstSeen, LastSeen: in.LastSeen, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
		OccurrenceCount: in.OccurrenceCount, LateCount: in.LateCount, ReopenOf: orNull(in.ReopenOf),
		ResolvedAt: in.ResolvedAt, AcknowledgedAt: in.AcknowledgedAt, LastValue: in.LastValue,
		Unit: orNull(in.Unit), LatestEventAt: in.LatestEventAt, LatestEventID: in.LatestEventID, Version: in.Version,
	}
	v.FirstReceivedAt, v.ResolvedReceivedAt = orNullTime(in.FirstReceivedAt), orNullTime(in.ResolvedReceivedAt)
	v.LastReceivedAt = orNullTime(in.LastReceivedAt)
	if v.Resources == nil {
		v.Resources = []string{}
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if in.ResolvedBy != "" {
		rb := in.ResolvedBy
		v.ResolvedBy = &rb
	}
	return v
}

// NewViews returns the views of ins.
func NewViews(ins []*Incident) []View {
	out := make([]View, len(ins))
	for i, in := range ins {
		out[i] = NewView(in)
	}
	return out
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// orNullTime is nil for the zero time, else a pointer to a copy of t.
func orNullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
