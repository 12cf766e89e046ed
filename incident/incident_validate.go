package incident

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem of an incident, naming its JSON field.
type FieldError struct {
	Field string // the JSON name, "labels.<name>" or "resources[<i>]"
	Msg   string
}

// Error returns "<field>: <message>".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// InvalidError is what (*Incident).Validate returns: every problem found,
// in field order.
type InvalidError struct {
	Problems []*FieldError
}

// Error returns the problems joined by "; ".
func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the problems, for errors.As.
func (e *InvalidError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Validate checks the rules every incident the worker writes satisfies (the
// fold of dedupe and its quiet-period Expire are the only writers), so that
// an incident from elsewhere (an import, a migration) can be refused before
// it reaches a store. It returns nil or an *InvalidError listing every
// problem, each naming its JSON field:
//
//   - id, fingerprint, title and source are not blank; every string is
//     valid UTF-8 within the decoder's byte limit, with no control
//     characters except newlines and tabs in description and label values
//     (the same limits Decode puts on the event fields they come from; the
//     id, the fingerprint, the reopen_of and the latest_event_id are held to
//     MaxIDBytes);
//   - type, severity, peak_severity and state are known values, and
//     peak_severity is at least as severe as severity (the fold keeps the
//     most severe trigger's);
//   - resources are non-empty names, sorted and unique (the fold merges
//     them by binary search); at most MaxLabels labels with non-empty names;
//   - first_seen, last_seen, created_at and updated_at are set and within
//     the years 1970..9999, first_seen <= last_seen; acknowledged_at and
//     latest_event_at, when set, are in that range too, and resolved_at is
//     not before 1970 (it is last_seen plus the quiet period after a
//     timeout, so it may run a little past last_seen's range);
//   - occurrence_count >= 1, 0 <= late_count < occurrence_count (the trigger
//     that opened an incident is never late), version >= 1;
//   - resolved_at and resolved_by are both set when the state is Resolved
//     or Closed and both absent otherwise; resolved_by is event, timeout or
//     operator;
//   - reopen_of does not name the incident itself; last_value is finite.
//
// The zero values of Type, Severity and State (Unknown, P0, Detected) are
// valid, so an incident decoded from JSON that lacked those members passes:
// callers reading JSON check that the members are present.
func (in *Incident) Validate() error {
	if in == nil {
		return &InvalidError{Problems: []*FieldError{{Field: "incident", Msg: "nil"}}}
	}
	var v validator
	v.required("id", in.ID, MaxIDBytes)
	v.required("fingerprint", in.Fingerprint, MaxIDBytes)
	v.text("dedup_key", in.DedupKey, MaxDedupKeyBytes, false)
	v.required("title", in.Title, MaxTitleBytes)
	v.text("description", in.Description, MaxDescriptionBytes, true)
	v.required("source", in.Source, MaxSourceBytes)
	if !in.Type.Valid() {
		v.add("type", "unknown type %d", uint8(in.Type))
	}
	if !in.Severity.Valid() {
		v.add("severity", "unknown severity %d", uint8(in.Severity))
	}
	switch {
	case !in.PeakSeverity.Valid():
		v.add("peak_severity", "unknown severity %d", uint8(in.PeakSeverity))
	case in.Severity.Valid() && in.Severity.MoreSevere(in.PeakSeverity):
		v.add("peak_severity", "%s is less severe than severity %s", in.PeakSeverity, in.Severity)
	}
	if !in.State.Valid() {
		v.add("state", "unknown state %d", uint8(in.State))
	}
	for i, r := range in.Resources {
		field := func() string { return "resources[" + strconv.Itoa(i) + "]" } // named only on failure
		if r == "" {
			v.add(field(), "empty resource name")
			continue
		}
		if err := checkString("", r, MaxResourceBytes, false); err != nil {
			v.add(field(), "%s", err.Msg)
		}
		if i > 0 && in.Resources[i-1] >= r {
			v.add(field(), "not sorted and unique: %q after %q", truncate(r), truncate(in.Resources[i-1]))
		}
	}
	if len(in.Labels) > MaxLabels {
		v.add("labels", "%d labels, at most %d", len(in.Labels), MaxLabels)
	}
	from := len(v.problems)
	for k, val := range in.Labels {
		if k == "" {
			v.add("labels", "empty label name")
			continue
		}
		if err := checkString("labels", k, MaxLabelKeyBytes, false); err != nil {
			v.add("labels", "name %q: %s", truncate(k), err.Msg)
			continue
		}
		if err := checkString("", val, MaxLabelValueBytes, true); err != nil {
			v.add("labels."+k, "%s", err.Msg) // named only on failure: no allocation per label
		}
	}
	// The map's order is random: the label problems in a stable one.
	slices.SortFunc(v.problems[from:], func(a, b *FieldError) int { return strings.Compare(a.Error(), b.Error()) })
	v.time("first_seen", in.FirstSeen, true)
	v.time("last_seen", in.LastSeen, true)
	if !in.FirstSeen.IsZero() && in.LastSeen.Before(in.FirstSeen) {
		v.add("last_seen", "%s is before first_seen %s", stamp(in.LastSeen), stamp(in.FirstSeen))
	}
	v.time("created_at", in.CreatedAt, true)
	v.time("updated_at", in.UpdatedAt, true)
	if in.OccurrenceCount < 1 {
		v.add("occurrence_count", "%d, must be at least 1", in.OccurrenceCount)
	}
	if in.LateCount < 0 || (in.OccurrenceCount >= 1 && in.LateCount >= in.OccurrenceCount) {
		v.add("late_count", "%d, must be at least 0 and less than occurrence_count %d", in.LateCount, in.OccurrenceCount)
	}
	v.text("reopen_of", in.ReopenOf, MaxIDBytes, false)
	if in.ReopenOf != "" && in.ReopenOf == in.ID {
		v.add("reopen_of", "names the incident itself")
	}
	ended := in.State == Resolved || in.State == Closed
	switch {
	case in.ResolvedAt == nil && ended:
		v.add("resolved_at", "missing: the state is %s", in.State)
	case in.ResolvedAt != nil && in.State.Valid() && !ended:
		v.add("resolved_at", "set, but the state is %s", in.State)
	case in.ResolvedAt != nil && in.ResolvedAt.IsZero():
		v.add("resolved_at", "the zero time")
	case in.ResolvedAt != nil && in.ResolvedAt.UTC().Year() < minYear:
		v.add("resolved_at", "year %d, before %d", in.ResolvedAt.UTC().Year(), minYear)
	}
	switch in.ResolvedBy {
	case "":
		if ended {
			v.add("resolved_by", "missing: the state is %s", in.State)
		}
	case ResolvedByEvent, ResolvedByTimeout, ResolvedByOperator:
		if in.State.Valid() && !ended {
			v.add("resolved_by", "set, but the state is %s", in.State)
		}
	default:
		v.add("resolved_by", "unknown value %q (want %s, %s or %s)", truncate(string(in.ResolvedBy)),
			ResolvedByEvent, ResolvedByTimeout, ResolvedByOperator)
	}
	if in.AcknowledgedAt != nil {
		v.time("acknowledged_at", *in.AcknowledgedAt, true)
	}
	if in.LastValue != nil && (math.IsNaN(*in.LastValue) || math.IsInf(*in.LastValue, 0)) {
		v.add("last_value", "must be a finite number")
	}
	v.text("unit", in.Unit, MaxUnitBytes, false)
	v.time("latest_event_at", in.LatestEventAt, false)
	v.text("latest_event_id", in.LatestEventID, MaxIDBytes, false)
	v.time("first_received_at", in.FirstReceivedAt, false)
	v.time("resolved_received_at", in.ResolvedReceivedAt, false)
	v.time("last_received_at", in.LastReceivedAt, false)
	if in.Version < 1 {
		v.add("version", "%d, must be at least 1", in.Version)
	}
	if len(v.problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: v.problems}
}

// validator collects the problems of one incident.
type validator struct {
	problems []*FieldError
}

func (v *validator) add(field, format string, args ...any) {
	v.problems = append(v.problems, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// required checks a string that must not be blank.
func (v *validator) required(field, s string, max int) {
	if strings.TrimSpace(s) == "" {
		if s == "" {
			v.add(field, "empty")
		} else {
			v.add(field, "blank")
		}
		return
	}
	v.text(field, s, max, false)
}

// text checks UTF-8, the byte limit and control characters, as Decode does.
func (v *validator) text(field, s string, max int, multiline bool) {
	if err := checkString(field, s, max, multiline); err != nil {
		v.add(field, "%s", err.Msg)
	}
}

// time checks that t is set (when required) and within the event years.
func (v *validator) time(field string, t time.Time, required bool) {
	if t.IsZero() {
		if required {
			v.add(field, "missing (the zero time)")
		}
		return
	}
	if y := t.UTC().Year(); y < minYear || y > maxYear {
		v.add(field, "year %d out of range %d..%d", y, minYear, maxYear)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
