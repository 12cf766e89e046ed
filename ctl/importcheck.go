package ctl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// maxListed is how many refused records an import or migrate error lists.
const maxListed = 10

// eventsHint is added when the first record of an import looks like an
// event rather than an incident.
const eventsHint = "this looks like an events file: publish it with `incidentctl publish`"

// invalidInputError refuses an import or a migration before anything is
// written: it lists the refused records (at most maxListed of them).
type invalidInputError struct {
	op      string // "import" or "migrate"
	what    string // "records" or "source incidents"
	total   int
	refused []refusedRecord
	hint    string
}

// refusedRecord is one record and what is wrong with it.
type refusedRecord struct {
	where    string // "line 3", `incident "x"`
	problems []string
}

func (e *invalidInputError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: nothing written: %d of %d %s are invalid", e.op, len(e.refused), e.total, e.what)
	for _, r := range e.refused[:min(len(e.refused), maxListed)] {
		fmt.Fprintf(&b, "\n  %s: %s", r.where, strings.Join(r.problems, "; "))
	}
	if n := len(e.refused) - maxListed; n > 0 {
		fmt.Fprintf(&b, "\n  and %d more", n)
	}
	if e.hint != "" {
		fmt.Fprintf(&b, "\n  hint: %s", e.hint)
	}
	return b.String()
}

// inputCheck gathers the problems of the records of one input, by record
// index.
type inputCheck struct {
	where func(i int) string
	probs map[int][]string
}

func newInputCheck(where func(i int) string) *inputCheck {
	return &inputCheck{where: where, probs: map[int][]string{}}
}

func (c *inputCheck) add(i int, p string) { c.probs[i] = append(c.probs[i], p) }

// notIncident records the field problems of record i as one entry, in the
// order of the incident's fields.
func (c *inputCheck) notIncident(i int, fps []fieldProblem) {
	if len(fps) == 0 {
		return
	}
	slices.SortStableFunc(fps, func(a, b fieldProblem) int { return fieldPos(a.field) - fieldPos(b.field) })
	parts := make([]string, len(fps))
	for k, p := range fps {
		parts[k] = p.field + ": " + p.msg
	}
	c.add(i, "not an incident: "+strings.Join(parts, "; "))
}

// incidents checks the incidents of an input; all[i] is nil for a record
// already refused (not JSON, not an object). Each incident must validate
// and carry a fingerprint as the worker makes them; no id may appear twice;
// and, for the records that pass, each identity may have one active
// incident only, the one importInto writes last (its current one), or the
// store would hold two open incidents of it or point at a resolved one.
func (c *inputCheck) incidents(all []*incident.Incident, extra map[int][]fieldProblem) {
	first := make(map[string]int, len(all))
	for i, in := range all {
		if in == nil {
			continue
		}
		fps := extra[i]
		if err := in.Validate(); err != nil {
			var ie *incident.InvalidError
			if !errors.As(err, &ie) {
				ie = &incident.InvalidError{Problems: []*incident.FieldError{{Field: "incident", Msg: err.Error()}}}
			}
			decoded := len(fps) // the problems decodeRecord found
			for _, p := range ie.Problems {
				// A field that did not decode (or is missing) is reported
				// once; rules comparing with it would only echo that.
				if !slices.ContainsFunc(fps[:decoded], func(q fieldProblem) bool {
					return q.field == p.Field || slices.Contains(comparedWith[p.Field], q.field)
				}) {
					fps = append(fps, fieldProblem{p.Field, p.Msg})
				}
			}
		}
		if in.Fingerprint != "" && !dedupe.ValidFingerprint(in.Fingerprint) &&
			!slices.ContainsFunc(fps, func(q fieldProblem) bool { return q.field == "fingerprint" }) {
			fps = append(fps, fieldProblem{"fingerprint", fmt.Sprintf("%q is not v1: and 32 lower-case hex digits, as the worker makes them", clip(in.Fingerprint, 64))})
		}
		c.notIncident(i, fps)
		if in.ID == "" {
			continue
		}
		if in.ID == "." || in.ID == ".." {
			c.add(i, fmt.Sprintf("id %q cannot be named in an API path (/api/v1/incidents/{id}): give it another id", in.ID))
			continue
		}
		if j, dup := first[in.ID]; dup {
			c.add(i, fmt.Sprintf("id %q again (first on %s)", clip(in.ID, 64), c.where(j)))
			continue
		}
		first[in.ID] = i
	}
	var sound []*incident.Incident
	index := make(map[*incident.Incident]int, len(all))
	for i, in := range all {
		if in != nil && len(c.probs[i]) == 0 {
			sound = append(sound, in)
			index[in] = i
		}
	}
	for _, group := range identityOrder(sound) {
		last := group[len(group)-1]
		for _, in := range group[:len(group)-1] {
			if in.Active() {
				c.add(index[in], fmt.Sprintf("active (%s), but %q (%s) is the newest incident of its fingerprint: only an identity's newest incident may be active",
					in.State, clip(last.ID, 64), c.where(index[last])))
			}
		}
	}
}

// comparedWith names, for a field, the fields Validate compares it with.
var comparedWith = map[string][]string{
	"peak_severity": {"severity"},
	"last_seen":     {"first_seen"},
	"late_count":    {"occurrence_count"},
	"resolved_at":   {"state"},
	"resolved_by":   {"state"},
	"reopen_of":     {"id"},
}

// err returns nil when no record has a problem, else an
// *invalidInputError listing them in input order.
func (c *inputCheck) err(op, what string, total int) *invalidInputError {
	if len(c.probs) == 0 {
		return nil
	}
	idx := make([]int, 0, len(c.probs))
	for i := range c.probs {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	e := &invalidInputError{op: op, what: what, total: total}
	for _, i := range idx {
		e.refused = append(e.refused, refusedRecord{where: c.where(i), problems: c.probs[i]})
	}
	return e
}

// checkSource checks what migrate read before anything is written: the
// rules import applies, records named by id.
func checkSource(all []*incident.Incident) error {
	c := newInputCheck(func(i int) string {
		if all[i].ID == "" {
			return fmt.Sprintf("record %d (newest first)", i+1)
		}
		return fmt.Sprintf("incident %q", clip(all[i].ID, 64))
	})
	c.incidents(all, nil)
	if e := c.err("migrate", "source incidents", len(all)); e != nil {
		return e
	}
	return nil
}

// readImport reads an import input, what export writes: JSON lines, or one
// JSON array (any whitespace between values is fine), and checks every
// record before anything is written. It returns the incidents, or an
// *invalidInputError naming each refused record by the line it starts on.
// Records are held in memory: the input is read once. Records in the old
// system's format are converted by conv (see legacyConv).
func readImport(r io.Reader, conv *legacyConv) ([]*incident.Incident, error) {
	lc := &lineCounter{r: r}
	br := bufio.NewReaderSize(lc, 1<<16)
	skipped, first, err := skipSpace(br)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	dec := json.NewDecoder(br)
	var (
		all   []*incident.Incident
		lines []int
		extra = map[int][]fieldProblem{}
		raw0  json.RawMessage // the first record, for the events hint
	)
	c := newInputCheck(func(i int) string { return fmt.Sprintf("line %d", lines[i]) })
	array := first == '['
	// broken refuses the input where it stops being JSON: nothing after
	// that point can be read.
	broken := func(err error) {
		at := lc.off // the end, for a value cut short
		var se *json.SyntaxError
		if errors.As(err, &se) {
			at = skipped + se.Offset - 1 // the decoder counts from its start, to just past the culprit
		}
		all, lines = append(all, nil), append(lines, lc.lineAt(at))
		msg := strings.TrimPrefix(err.Error(), "json: ")
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "the input ends inside a value"
		case errors.Is(err, io.EOF) && array:
			msg = "the input ends inside the array (no closing ])"
		}
		c.add(len(all)-1, "not JSON: "+msg+" (reading stopped here)")
	}
	ok := true
	if array {
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	for {
		if array && !dec.More() {
			break
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if !array && errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			broken(err)
			ok = false
			break
		}
		i := len(all)
		lines = append(lines, lc.lineAt(skipped+dec.InputOffset()-int64(len(raw))))
		in, fps, msg := conv.decode(raw)
		if i == 0 {
			raw0 = raw
		}
		if msg != "" {
			c.add(i, msg)
		}
		all = append(all, in)
		if len(fps) > 0 {
			extra[i] = fps
		}
	}
	if array && ok {
		if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
			if err == nil {
				err = fmt.Errorf("unexpected %v", tok)
			}
			broken(err)
		} else if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			all, lines = append(all, nil), append(lines, lc.lineAt(skipped+dec.InputOffset()))
			c.add(len(all)-1, "something after the array: an import is JSON lines or one array")
		}
	}
	c.incidents(all, extra)
	if e := c.err("import", "records", len(all)); e != nil {
		if len(c.probs[0]) > 0 && looksLikeEvent(raw0) {
			e.hint = eventsHint
		}
		return nil, e
	}
	return all, nil
}

// fieldProblem is one problem of a record, by JSON field.
type fieldProblem struct {
	field, msg string
}

// absent is what decodeRecord puts in the enum fields before decoding: a
// member that is missing or null leaves it there.
const absent = 0xff

// decodeRecord decodes one record. It returns the incident (nil when the
// record is not a JSON object, msg saying so) and the problems decoding
// found: members of the wrong JSON type or with unknown values, and the
// members whose absence would read as a valid value (type, severity,
// peak_severity and state: Unknown, P0, Detected).
func decodeRecord(raw json.RawMessage) (in *incident.Incident, fps []fieldProblem, msg string) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, nil, fmt.Sprintf("not an incident: a JSON %s, not an object", jsonKind(raw))
	}
	in = new(incident.Incident)
	fields := reflect.ValueOf(in).Elem()
	markAbsent(fields)
	if err := json.Unmarshal(raw, in); err != nil {
		// encoding/json stops at some errors: decode member by member
		// instead, naming each one that does not decode and keeping the
		// others, so that Validate does not report them missing.
		var keys map[string]json.RawMessage
		if json.Unmarshal(raw, &keys) != nil {
			return nil, nil, "not an incident: " + err.Error()
		}
		*in = incident.Incident{}
		markAbsent(fields)
		for k, v := range keys {
			f, ok := incidentField(k)
			if !ok {
				continue
			}
			if err := json.Unmarshal(v, fields.Field(f.index).Addr().Interface()); err != nil {
				fps = append(fps, fieldProblem{f.name, memberError(err, f.typ)})
			}
		}
		if len(fps) == 0 {
			fps = append(fps, fieldProblem{"incident", err.Error()})
		}
	}
	for _, f := range incidentFields {
		if !f.zeroValid {
			continue
		}
		v := fields.Field(f.index)
		if v.Uint() != absent {
			continue
		}
		v.SetUint(0)
		if !slices.ContainsFunc(fps, func(p fieldProblem) bool { return p.field == f.name }) {
			fps = append(fps, fieldProblem{f.name, fmt.Sprintf("missing (it would read as %v)", v.Interface())})
		}
	}
	return in, fps, ""
}

// markAbsent sets the enum fields of an incident to absent.
func markAbsent(fields reflect.Value) {
	for _, f := range incidentFields {
		if f.zeroValid {
			fields.Field(f.index).SetUint(absent)
		}
	}
}

// looksLikeEvent reports whether a record's members are an event's: no
// fingerprint and no version, but a source, a title or an action.
func looksLikeEvent(raw json.RawMessage) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil || keys == nil {
		return false
	}
	has := func(k string) bool { _, ok := member(keys, k); return ok }
	return !has("fingerprint") && !has("version") && (has("source") || has("title") || has("action"))
}

// member finds a member as encoding/json matches it to a field: the exact
// name, else any case.
func member(keys map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if v, ok := keys[name]; ok {
		return v, true
	}
	for k, v := range keys {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// incidentFieldInfo is one JSON member of incident.Incident.
type incidentFieldInfo struct {
	index     int // in incident.Incident
	name      string
	typ       reflect.Type
	zeroValid bool // the zero value is a valid value (an enum)
}

// incidentFields lists Incident's members in declaration order, from its
// JSON tags.
var incidentFields = func() []incidentFieldInfo {
	enums := []reflect.Type{reflect.TypeFor[incident.Type](), reflect.TypeFor[incident.Severity](), reflect.TypeFor[incident.State]()}
	t := reflect.TypeFor[incident.Incident]()
	var out []incidentFieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, incidentFieldInfo{index: i, name: name, typ: f.Type, zeroValid: slices.Contains(enums, f.Type)})
	}
	return out
}()

func incidentField(key string) (incidentFieldInfo, bool) {
	for _, f := range incidentFields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range incidentFields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return incidentFieldInfo{}, false
}

// fieldPos orders problems as the fields are declared; "labels.x" and
// "resources[2]" sort with their field, anything else last.
func fieldPos(field string) int {
	base, _, _ := strings.Cut(field, ".")
	base, _, _ = strings.Cut(base, "[")
	for i, f := range incidentFields {
		if f.name == base {
			return i
		}
	}
	return len(incidentFields)
}

// memberError says why one member did not decode into a field of type t.
func memberError(err error, t reflect.Type) string {
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("a JSON %s, want %s", te.Value, want(t))
	case errors.As(err, &pe):
		return fmt.Sprintf("not an RFC 3339 time: %q", clip(pe.Value, 64))
	}
	return strings.TrimPrefix(err.Error(), "incident: ")
}

// want describes what a field of type t takes in JSON.
func want(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[time.Time]():
		return "an RFC 3339 time string"
	case reflect.TypeFor[incident.Severity]():
		return "a severity string (P0..P4)"
	case reflect.TypeFor[incident.State]():
		return "a state name string"
	case reflect.TypeFor[incident.Type]():
		return "a type name string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int64, reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array of strings"
	case reflect.Map:
		return "an object of strings"
	}
	return t.String()
}

// jsonKind names the kind of a JSON value by its first byte.
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	}
	return "number"
}

// skipSpace consumes leading whitespace, returning how much and the first
// other byte (0 for an empty input).
func skipSpace(br *bufio.Reader) (int64, byte, error) {
	var n int64
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return n, 0, nil
		}
		if err != nil {
			return n, 0, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return n, b, br.UnreadByte()
		}
		n++
	}
}

// lineCounter passes a reader through, noting where its newlines are, so
// that a byte offset the JSON decoder reports can be named by its line.
// Offsets must be asked for in increasing order; newlines before the last
// one asked for are forgotten, so only the read-ahead is kept.
type lineCounter struct {
	r      io.Reader
	off    int64   // bytes read so far
	nl     []int64 // offsets of the newlines not yet passed
	passed int     // newlines before nl
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := 0; i < n; {
		k := bytes.IndexByte(p[i:n], '\n')
		if k < 0 {
			break
		}
		c.nl = append(c.nl, c.off+int64(i+k))
		i += k + 1
	}
	c.off += int64(n)
	return n, err
}

// lineAt returns the 1-based line of the byte at off.
func (c *lineCounter) lineAt(off int64) int {
	k := 0
	for k < len(c.nl) && c.nl[k] < off {
		k++
	}
	c.passed += k
	c.nl = c.nl[k:]
	if cap(c.nl) > 4096 && len(c.nl) < cap(c.nl)/4 {
		c.nl = slices.Clone(c.nl)
	}
	return c.passed + 1
}
