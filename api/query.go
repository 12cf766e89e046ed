package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Page limits of the list endpoint.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// MaxFilterValues is the most values one list parameter (state, severity,
// source, type, fingerprint) may hold, repeats and comma-separated items
// counted together: a query of 50,000 sources took Pebble 30 s of CPU, and
// on Redis each value of a list walk costs about 4 ms inside one script
// (1000 sources with since: over 14 s during which Redis answered no
// other client, every worker's commits included), so a long one is
// refused (400) before it reaches the store.
const MaxFilterValues = 100

// ParamError is a bad query parameter; the API answers 400 naming it.
type ParamError struct {
	Param string
	Msg   string
}

// Error returns "parameter <name>: <message>".
func (e *ParamError) Error() string { return "parameter " + e.Param + ": " + e.Msg }

func perr(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// Query is a parsed list request.
type Query struct {
	Filter storage.Filter
	Page   storage.Page
}

// params are the list parameters, in the order error messages name them.
var params = []string{"state", "severity", "source", "type", "fingerprint", "active", "since", "until", "limit", "offset"}

// ParseQuery reads the list parameters: state, severity, source, type,
// fingerprint (repeatable or comma-separated: OR within a field, AND across
// fields), active (true/false), since/until (RFC 3339, on last_seen), limit
// (1 to 1000, default 50) and offset. Unknown parameters are errors too, so
// a typo does not silently widen a query.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	for k := range v {
		if !slices.Contains(params, k) {
			return q, perr(k, "unknown parameter (known: %s)", strings.Join(params, ", "))
		}
	}
	if err := parseLists(v, &q.Filter); err != nil {
		return q, err
	}
	var err error
	if q.Filter.Active, err = activeParam(v); err != nil {
		return q, err
	}
	if q.Filter.Since, err = timeParam(v, "since"); err != nil {
		return q, err
	}
	if q.Filter.Until, err = timeParam(v, "until"); err != nil {
		return q, err
	}
	if !q.Filter.Since.IsZero() && !q.Filter.Until.IsZero() && q.Filter.Until.Before(q.Filter.Since) {
		return q, perr("until", "is before since")
	}
	if q.Page.Limit, err = intParam(v, "limit", DefaultLimit, 1, MaxLimit); err != nil {
		return q, err
	}
	if q.Page.Offset, err = intParam(v, "offset", 0, 0, 1<<31-1); err != nil {
		return q, err
	}
	return q, nil
}

// parseLists reads the list parameters (state, severity, source, type,
// fingerprint) into f.
func parseLists(v url.Values, f *storage.Filter) error {
	lists := map[string][]string{}
	for _, name := range []string{"state", "severity", "source", "type", "fingerprint"} {
		vs, err := values(v, name)
		if err != nil {
			return err
		}
		lists[name] = vs
	}
	for _, s := range lists["state"] {
		st, err := incident.ParseState(s)
		if err != nil {
			return perr("state", "unknown state %q (want Detected, Triaged, Investigating, Remediating, Resolved or Closed)", s)
		}
		f.States = append(f.States, st)
	}
	for _, s := range lists["severity"] {
		sev, err := incident.ParseSeverity(s)
		if err != nil {
			return perr("severity", "unknown severity %q (want P0..P4 or critical, high, medium, low, info)", s)
		}
		f.Severities = append(f.Severities, sev)
	}
	f.Sources = lists["source"]
	for _, s := range lists["type"] {
		t, err := incident.ParseType(s)
		if err != nil {
			return perr("type", "unknown type %q", s)
		}
		f.Types = append(f.Types, t)
	}
	for _, s := range lists["fingerprint"] {
		fp := strings.ToLower(s)
		if !dedupe.ValidFingerprint(fp) {
			return perr("fingerprint", "want v1: and 32 hex digits (as in an incident's fingerprint), got %q", s)
		}
		f.Fingerprints = append(f.Fingerprints, fp)
	}
	return nil
}

// Values encodes q as list parameters (the inverse of ParseQuery), for
// clients.
func (q Query) Values() url.Values {
	v := url.Values{}
	for _, s := range q.Filter.States {
		v.Add("state", s.String())
	}
	for _, s := range q.Filter.Severities {
		v.Add("severity", s.String())
	}
	for _, s := range q.Filter.Sources {
		v.Add("source", s)
	}
	for _, t := range q.Filter.Types {
		v.Add("type", t.String())
	}
	for _, fp := range q.Filter.Fingerprints {
		v.Add("fingerprint", fp)
	}
	if q.Filter.Active != nil {
		v.Set("active", strconv.FormatBool(*q.Filter.Active))
	}
	if !q.Filter.Since.IsZero() {
		v.Set("since", q.Filter.Since.Format(time.RFC3339Nano))
	}
	if !q.Filter.Until.IsZero() {
		v.Set("until", q.Filter.Until.Format(time.RFC3339Nano))
	}
	if q.Page.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Page.Limit))
	}
	if q.Page.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Page.Offset))
	}
	return v
}

// values splits repeated and comma-separated values. A parameter given
// with nothing in it ("?fingerprint=", an unset shell variable) or with an
// empty item in its list ("P0,,P1", "Detected,") is an error, not a filter
// that quietly matches everything or skips the item.
func values(v url.Values, name string) ([]string, error) {
	var out []string
	for _, raw := range v[name] {
		if strings.TrimSpace(raw) == "" {
			return nil, perr(name, "empty value (leave the parameter out to match every value)")
		}
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s == "" {
				return nil, perr(name, "empty item in %q (a comma with nothing before or after it)", raw)
			}
			if len(out) == MaxFilterValues {
				return nil, perr(name, "more than %d values (split the query)", MaxFilterValues)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func single(v url.Values, name string) (string, bool, error) {
	vs := v[name]
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		if strings.TrimSpace(vs[0]) == "" {
			return "", false, perr(name, "empty value")
		}
		return strings.TrimSpace(vs[0]), true, nil
	}
	return "", false, perr(name, "given %d times, at most once", len(vs))
}

// activeParam reads active: true, false (any case) or absent (nil).
func activeParam(v url.Values) (*bool, error) {
	s, ok, err := single(v, "active")
	if err != nil || !ok {
		return nil, err
	}
	var b bool
	switch strings.ToLower(s) { // strconv.ParseBool would take 1, t, T too
	case "true":
		b = true
	case "false":
	default:
		return nil, perr("active", "want true or false, got %q", s)
	}
	return &b, nil
}

func timeParam(v url.Values, name string) (time.Time, error) {
	s, ok, err := single(v, name)
	if err != nil || !ok {
		return time.Time{}, err
	}
	t, err := incident.ParseTime(s)
	if err != nil {
		return time.Time{}, perr(name, "not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z): %q%s", s, plusHint(s))
	}
	return t.UTC(), nil
}

// plusHint explains a time that parses once a space is read as "+": an
// unencoded "+" in a URL query is a space, so an offset such as +00:00
// must be sent as %2B00:00.
func plusHint(s string) string {
	if !strings.Contains(s, " ") {
		return ""
	}
	if _, err := incident.ParseTime(strings.ReplaceAll(s, " ", "+")); err != nil {
		return ""
	}
	return ` (a "+" in a URL query means a space: encode the offset's "+" as %2B)`
}

func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s, ok, err := single(v, name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, perr(name, "want an integer between %d and %d, got %q", lo, hi, s)
	}
	return n, nil
}
