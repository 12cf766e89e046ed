// Package incident is the domain of the ingestion pipeline: the wire event that
// publishers send (schema v1), the incident the stores keep, and the closed
// vocabularies they share (severities, states, types, actions). It has no I/O.
package incident

import (
	"fmt"
	"strings"
)

// Severity ranks an incident from P0 (most severe) to P4. Lower is worse.
type Severity uint8

// The five severities.
const (
	P0 Severity = iota
	P1
	P2
	P3
	P4
)

// DefaultSeverity is used when a trigger event carries no severity.
const DefaultSeverity = P2

var severityNames = [...]string{"P0", "P1", "P2", "P3", "P4"}

// Severities lists every severity, most severe first.
var Severities = []Severity{P0, P1, P2, P3, P4}

// String returns "P0".."P4".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// Valid reports whether s is one of P0..P4.
func (s Severity) Valid() bool { return s <= P4 }

// MoreSevere reports whether s is more severe than o.
func (s Severity) MoreSevere(o Severity) bool { return s < o }

// ParseSeverity accepts P0..P4 (any case) and the old system's names
// critical, high, medium, low and info.
func ParseSeverity(v string) (Severity, error) {
	if len(v) == 2 && v[0] == 'P' && v[1] >= '0' && v[1] <= '4' { // the canonical form, without a lower-cased copy
		return Severity(v[1] - '0'), nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "p0", "critical":
		return P0, nil
	case "p1", "high":
		return P1, nil
	case "p2", "medium":
		return P2, nil
	case "p3", "low":
		return P3, nil
	case "p4", "info":
		return P4, nil
	}
	return 0, fmt.Errorf("incident: unknown severity %q (want P0..P4 or critical, high, medium, low, info)", v)
}

// MarshalText encodes the severity as "P0".."P4".
func (s Severity) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("incident: invalid severity %d", uint8(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText decodes any form ParseSeverity accepts.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// State is an incident's lifecycle state, the old system's six.
type State uint8

// The six states; the first four are active.
const (
	Detected State = iota
	Triaged
	Investigating
	Remediating
	Resolved
	Closed
)

var stateNames = [...]string{"Detected", "Triaged", "Investigating", "Remediating", "Resolved", "Closed"}

// States lists every state in lifecycle order.
var States = []State{Detected, Triaged, Investigating, Remediating, Resolved, Closed}

// String returns the state's name, e.g. "Detected".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Valid reports whether s is one of the six states.
func (s State) Valid() bool { return s <= Closed }

// Active is true for Detected, Triaged, Investigating and Remediating.
func (s State) Active() bool { return s <= Remediating }

// ParseState accepts a state name in any case.
func ParseState(v string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(n, strings.TrimSpace(v)) {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("incident: unknown state %q (want one of %s)", v, strings.Join(stateNames[:], ", "))
}

// MarshalText encodes the state's name.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("incident: invalid state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name in any case.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Type classifies what kind of incident it is.
type Type uint8

// The eight incident types.
const (
	Unknown Type = iota
	Infrastructure
	Application
	Security
	Data
	Performance
	Availability
	Compliance
)

var typeNames = [...]string{"Unknown", "Infrastructure", "Application", "Security", "Data", "Performance", "Availability", "Compliance"}

// Types lists every incident type.
var Types = []Type{Unknown, Infrastructure, Application, Security, Data, Performance, Availability, Compliance}

// String returns the type's canonical name, e.g. "Performance".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Valid reports whether t is one of the eight types.
func (t Type) Valid() bool { return t <= Compliance }

// ParseType accepts a type name in any case.
func ParseType(v string) (Type, error) {
	for i, n := range typeNames { // the canonical names first: a length compare rules most out
		if n == v {
			return Type(i), nil
		}
	}
	v = strings.TrimSpace(v)
	for i, n := range typeNames {
		if strings.EqualFold(n, v) {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("incident: unknown type %q (want one of %s)", v, strings.Join(typeNames[:], ", "))
}

// MarshalText encodes the type's canonical name.
func (t Type) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("incident: invalid type %d", uint8(t))
	}
	return []byte(typeNames[t]), nil
}

// UnmarshalText decodes a type name in any case.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Action is what an event asks for.
type Action uint8

// The three actions; trigger is the default.
const (
	Trigger Action = iota
	Acknowledge
	Resolve
)

var actionNames = [...]string{"trigger", "acknowledge", "resolve"}

// String returns "trigger", "acknowledge" or "resolve".
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ParseAction accepts the three action names in any case.
func ParseAction(v string) (Action, bool) {
	for i, n := range actionNames { // the canonical names first
		if n == v {
			return Action(i), true
		}
	}
	v = strings.TrimSpace(v)
	for i, n := range actionNames {
		if strings.EqualFold(n, v) {
			return Action(i), true
		}
	}
	return 0, false
}

// MarshalText encodes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// ResolvedBy says what resolved an incident.
type ResolvedBy string

// The ways an incident gets resolved.
const (
	ResolvedByEvent    ResolvedBy = "event"
	ResolvedByTimeout  ResolvedBy = "timeout"
	ResolvedByOperator ResolvedBy = "operator"
)
