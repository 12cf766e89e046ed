// Package legacy reads the incidents of the system incidentd replaces, "LLM
// Incident Manager": the JSON its serde model writes (its Redis records,
// and its "Export to JSON", a pretty-printed array of them). It recognises
// such a record (Is), decodes it (Decode) and converts it into an incident
// of ours (Convert), with a fingerprint of our scheme so that new events
// merge into the migrated open incidents. It has no I/O.
package legacy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// Name is how messages name the old system.
const Name = "LLM Incident Manager"

// Incident is the part of the old system's Incident that Convert uses,
// under its serde names. The rest of the old record (related_incidents,
// active_playbook, assignees, correlation_score, the resolution's
// resolved_by, root_cause and notes, the timeline but for its
// acknowledgement, and the old fingerprint) has nowhere to go and is not
// read.
type Incident struct {
	ID                string            `json:"id"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
	State             string            `json:"state"`
	Severity          string            `json:"severity"`
	IncidentType      string            `json:"incident_type"`
	Source            string            `json:"source"`
	Title             string            `json:"title"`
	Description       string            `json:"description"`
	AffectedResources []string          `json:"affected_resources"`
	Labels            map[string]string `json:"labels"`
	Resolution        *Resolution       `json:"resolution"`
	Timeline          []TimelineEvent   `json:"timeline"`
}

// Resolution is the part of the old resolution Convert uses.
type Resolution struct {
	ResolvedAt       time.Time `json:"resolved_at"`
	ResolutionMethod string    `json:"resolution_method"`
}

// TimelineEvent is the part of an old timeline entry Convert uses: a
// StateChanged entry names the states in its metadata (old_state,
// new_state).
type TimelineEvent struct {
	Timestamp time.Time         `json:"timestamp"`
	EventType string            `json:"event_type"`
	Metadata  map[string]string `json:"metadata"`
}

// oldOnly are members every old record has and ours never do; oursOnly
// the reverse.
var (
	oldOnly  = []string{"incident_type", "affected_resources", "timeline"}
	oursOnly = []string{"type", "resources", "peak_severity", "first_seen", "last_seen", "occurrence_count", "version"}
)

// Is reports whether raw is a JSON object in the old system's format: it
// has a member only old records have (incident_type, affected_resources,
// timeline) and none only ours have (type, resources, peak_severity,
// first_seen, last_seen, occurrence_count, version). A record with members
// of both is not old: it is read, and checked, as ours.
func Is(raw []byte) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil || keys == nil {
		return false
	}
	has := func(k string) bool { _, ok := keys[k]; return ok }
	return slices.ContainsFunc(oldOnly, has) && !slices.ContainsFunc(oursOnly, has)
}

// Decode decodes one old record.
func Decode(raw []byte) (*Incident, error) {
	var old Incident
	if err := json.Unmarshal(raw, &old); err != nil {
		return nil, fmt.Errorf("legacy: %w", err)
	}
	return &old, nil
}

// Convert turns an old record into an incident of ours at version 1; fp
// makes its fingerprint as the worker would for an event with the
// record's source, type, title, description, resources and labels. The
// problems it finds (a missing or unknown state, severity or
// incident_type) are returned by the JSON name of our field, the incident
// holding the zero value there; the caller validates the rest
// (incident.Validate). See the README ("Migrating from LLM Incident
// Manager") for what each field becomes.
func Convert(old *Incident, fp *dedupe.Fingerprinter) (*incident.Incident, []*incident.FieldError) {
	var probs []*incident.FieldError
	// enum parses the old member from into our field; a problem names
	// the old member when its name differs.
	enum := func(field, from, v string, parse func(string) error) {
		named := ""
		if from != field {
			named = "from " + from + ": "
		}
		switch err := parse(v); {
		case v == "":
			probs = append(probs, &incident.FieldError{Field: field, Msg: named + "missing"})
		case err != nil:
			probs = append(probs, &incident.FieldError{Field: field, Msg: named + strings.TrimPrefix(err.Error(), "incident: ")})
		}
	}
	in := &incident.Incident{
		ID: strings.ToLower(old.ID), Title: old.Title, Description: old.Description, Source: old.Source,
		Resources: resources(old.AffectedResources), CreatedAt: old.CreatedAt, UpdatedAt: old.UpdatedAt,
		FirstSeen: eventTime(old.CreatedAt), LastSeen: eventTime(old.UpdatedAt), OccurrenceCount: 1, Version: 1,
	}
	if len(old.Labels) > 0 {
		in.Labels = old.Labels
	}
	enum("type", "incident_type", old.IncidentType, func(v string) (err error) { in.Type, err = incident.ParseType(v); return })
	enum("severity", "severity", old.Severity, func(v string) (err error) { in.Severity, err = incident.ParseSeverity(v); return })
	enum("state", "state", old.State, func(v string) (err error) { in.State, err = incident.ParseState(v); return })
	in.PeakSeverity = in.Severity
	if in.State == incident.Resolved || in.State == incident.Closed {
		in.ResolvedAt, in.ResolvedBy = resolved(old)
	}
	if in.State != incident.Detected {
		in.AcknowledgedAt = acknowledged(old.Timeline)
	}
	ev := incident.Event{Source: in.Source, Type: in.Type, Title: in.Title, Description: in.Description,
		Resources: in.Resources, Labels: in.Labels}
	in.Fingerprint = fp.Fingerprint(&ev)
	return in, probs
}

// eventTime is an old time as the fold keeps event times: UTC, cut to the
// microsecond.
func eventTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// resources is the old affected_resources as an incident keeps resources:
// sorted, unique, without empty names, at most
// incident.MaxIncidentResources (the first in sorted order, as the fold
// keeps them).
func resources(rs []string) []string {
	out := slices.DeleteFunc(slices.Clone(dedupe.SortedUnique(rs)), func(r string) bool { return r == "" })
	return slices.Clip(out[:min(len(out), incident.MaxIncidentResources)])
}

// resolved is when and by what a Resolved or Closed old incident was
// resolved: the resolution's time and method (Automated: "event", the
// producer's side; Manual and AutoAssistedManual: "operator"), or with no
// resolution, updated_at and "operator".
func resolved(old *Incident) (*time.Time, incident.ResolvedBy) {
	if r := old.Resolution; r != nil && !r.ResolvedAt.IsZero() {
		at := eventTime(r.ResolvedAt)
		if r.ResolutionMethod == "Automated" {
			return &at, incident.ResolvedByEvent
		}
		return &at, incident.ResolvedByOperator
	}
	at := eventTime(old.UpdatedAt)
	return &at, incident.ResolvedByOperator
}

// acknowledged is the time of the first StateChanged entry into Triaged,
// or nil.
func acknowledged(timeline []TimelineEvent) *time.Time {
	for _, e := range timeline {
		if e.EventType == "StateChanged" && e.Metadata["new_state"] == "Triaged" && !e.Timestamp.IsZero() {
			at := eventTime(e.Timestamp)
			return &at
		}
	}
	return nil
}
