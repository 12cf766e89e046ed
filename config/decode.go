package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// decoder fills a Config from a TOML document already parsed into generic
// values, one key at a time, so that every unknown key and every value of the
// wrong type is reported, not only the first. A key whose value cannot be
// converted keeps its default and is recorded in bad.
type decoder struct {
	path string
	pos  map[string]unstable.Position // dotted key → where it appears
	p    *problems
	bad  map[string]bool
}

// decodeFile decodes the TOML document data (read from path) into cfg. It
// adds a problem for every unknown key and every value of the wrong type,
// records the keys of the latter in bad, and reports false only when the
// document is not TOML at all (a syntax error, a duplicate key), in which
// case nothing was decoded.
func decodeFile(path string, data []byte, cfg *Config, p *problems, bad map[string]bool) bool {
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		addSyntaxError(p, path, data, err)
		return false
	}
	d := decoder{path: path, pos: keyPositions(data), p: p, bad: bad}
	d.table(reflect.ValueOf(cfg).Elem(), raw, "")
	if _, ok := d.pos["state.backend"]; ok {
		cfg.BackendDefaulted = false
	}
	return true
}

func addSyntaxError(p *problems, path string, data []byte, err error) {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		p.add(path, "%v", err)
		return
	}
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	where := fmt.Sprintf("%s:%d:%d", path, line, col)
	if key := dottedKey(de.Key()); key != "" {
		if table := tableAt(data, line); table != "" {
			key = table + "." + key
		}
		p.add(key, "%s (%s)", msg, where)
		return
	}
	p.add(where, "%s", msg)
}

// tableAt returns the dotted name of the table that holds line of data
// (1-based): the last [table] or [[array]] header above it, "" for the
// document root or for a header on line itself. The parser names a
// key it finds twice relative to that table ("pool_size" for
// state.pool_size).
func tableAt(data []byte, line int) string {
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.ArrayTable {
			continue
		}
		it := e.Key()
		if !it.Next() || p.Shape(it.Node().Raw).Start.Line >= line {
			break
		}
		name := joinKey("", string(it.Node().Data))
		for it.Next() {
			name = joinKey(name, string(it.Node().Data))
		}
		table = name
	}
	return table
}

// table decodes the TOML table m into the struct v, whose dotted key is
// prefix ("" for the document root), in document order.
func (d *decoder) table(v reflect.Value, m map[string]any, prefix string) {
	for _, k := range d.keysInOrder(prefix, m) {
		key := joinKey(prefix, k)
		i := fieldIndex(v.Type(), k)
		if i < 0 {
			msg := "unknown key" + d.where(key)
			if s := suggestKey(key); s != "" {
				msg += "; did you mean " + s + "?"
			}
			d.p.add(key, "%s", msg)
			continue
		}
		d.value(v.Field(i), m[k], key)
	}
}

// value converts the TOML value raw into v, whose dotted key is key. On a
// mismatch it adds a problem naming key and what was expected, leaves v
// unchanged and reports false.
func (d *decoder) value(v reflect.Value, raw any, key string) bool {
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := raw.(string)
		if !ok {
			return d.fail(key, `want a duration string (like "30s"), got %s`, describe(raw, true))
		}
		var dur Duration
		if err := dur.UnmarshalText([]byte(s)); err != nil {
			return d.fail(key, "%v", err)
		}
		v.Set(reflect.ValueOf(dur))
	case t == syncIntervalType:
		s, ok := raw.(string)
		if !ok {
			return d.fail(key, `want a duration string (like "2m") or "always", got %s`, describe(raw, true))
		}
		var si SyncInterval
		if err := si.UnmarshalText([]byte(s)); err != nil {
			return d.fail(key, "%v", err)
		}
		v.Set(reflect.ValueOf(si))
	case t.Kind() == reflect.String:
		// Strings may be secrets: the wrong value is not echoed.
		s, ok := raw.(string)
		if !ok {
			return d.fail(key, "want a string, got %s", describe(raw, false))
		}
		v.SetString(s)
	case t.Kind() == reflect.Int:
		n, ok := raw.(int64)
		if !ok {
			return d.fail(key, "want an integer, got %s", describe(raw, true))
		}
		if v.OverflowInt(n) {
			return d.fail(key, "%d is out of range", n)
		}
		v.SetInt(n)
	case t.Kind() == reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return d.fail(key, "want true or false, got %s", describe(raw, true))
		}
		v.SetBool(b)
	case t.Kind() == reflect.Slice:
		arr, ok := raw.([]any)
		if !ok {
			return d.fail(key, "want an array, got %s", describe(raw, false))
		}
		out := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			ok = d.value(out.Index(i), e, fmt.Sprintf("%s[%d]", key, i)) && ok
		}
		if !ok {
			d.bad[key] = true
			return false
		}
		v.Set(out)
	case t.Kind() == reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return d.fail(key, "want a table, got %s", describe(raw, false))
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range d.keysInOrder(key, m) {
			e := reflect.New(t.Elem()).Elem()
			if d.value(e, m[k], joinKey(key, k)) {
				out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
			} else {
				ok = false
			}
		}
		if !ok {
			d.bad[key] = true
			return false
		}
		v.Set(out)
	case t.Kind() == reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return d.fail(key, "want a table, got %s", describe(raw, false))
		}
		d.table(v, m, key)
	default:
		panic("config: no TOML decoding for " + t.String() + " (" + key + ")")
	}
	return true
}

// fail adds the problem "key: msg (file:line:col)", marks key bad and
// returns false.
func (d *decoder) fail(key, format string, args ...any) bool {
	d.p.add(key, "%s%s", fmt.Sprintf(format, args...), d.where(key))
	d.bad[key] = true
	return false
}

// where returns " (file:line:col)" for key, or "" when its position is not
// known. An array element ("key[2]") is placed at its array's key.
func (d *decoder) where(key string) string {
	for strings.HasSuffix(key, "]") {
		key = key[:strings.LastIndex(key, "[")]
	}
	pos, ok := d.pos[key]
	if !ok {
		return ""
	}
	return fmt.Sprintf(" (%s:%d:%d)", d.path, pos.Line, pos.Column)
}

// keysInOrder returns the keys of the table m (at dotted key prefix) in
// document order, so problems are listed as the file reads.
func (d *decoder) keysInOrder(prefix string, m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, iok := d.pos[joinKey(prefix, keys[i])]
		pj, jok := d.pos[joinKey(prefix, keys[j])]
		if iok != jok || pi.Offset != pj.Offset {
			return iok && (!jok || pi.Offset < pj.Offset)
		}
		return keys[i] < keys[j]
	})
	return keys
}

// describe names the TOML type of v for a problem: "a string", or with show
// (never for values that may be secrets) the value too: `the string "x"`.
func describe(v any, show bool) string {
	var kind string
	switch v.(type) {
	case string:
		kind = "string"
	case int64:
		kind = "integer"
	case float64:
		kind = "float"
	case bool:
		kind = "boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		kind = "date/time"
	}
	switch {
	case !show && kind == "integer":
		return "an integer"
	case !show:
		return "a " + kind
	case kind == "string":
		return fmt.Sprintf("the string %q", v)
	}
	return fmt.Sprintf("the %s %v", kind, v)
}

// fieldIndex returns the index of the field of struct type t whose TOML name
// is name, or -1.
func fieldIndex(t reflect.Type, name string) int {
	for i := range t.NumField() {
		if n := tomlName(t.Field(i)); n != "" && n == name {
			return i
		}
	}
	return -1
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return tomlKey(k)
	}
	return prefix + "." + tomlKey(k)
}

// keyPositions maps the dotted key of every table and key-value of a TOML
// document (inline tables included) to where it first appears. It is only
// called on a document that toml.Unmarshal accepted. It uses go-toml's
// unstable parser, whose API may change between releases; only the
// positions in problems depend on it.
func keyPositions(data []byte) map[string]unstable.Position {
	pos := map[string]unstable.Position{}
	var p unstable.Parser
	p.Reset(data)
	record := func(prefix string, keyNode *unstable.Node) string {
		it := keyNode.Key()
		for it.Next() {
			prefix = joinKey(prefix, string(it.Node().Data))
			if _, seen := pos[prefix]; !seen {
				pos[prefix] = p.Shape(it.Node().Raw).Start
			}
		}
		return prefix
	}
	var keyValue func(prefix string, kv *unstable.Node)
	keyValue = func(prefix string, kv *unstable.Node) {
		key := record(prefix, kv)
		if v := kv.Value(); v.Kind == unstable.InlineTable {
			it := v.Children()
			for it.Next() {
				if it.Node().Kind == unstable.KeyValue {
					keyValue(key, it.Node())
				}
			}
		}
	}
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = record("", e)
		case unstable.KeyValue:
			keyValue(table, e)
		}
	}
	return pos
}

var (
	durationType     = reflect.TypeFor[Duration]()
	syncIntervalType = reflect.TypeFor[SyncInterval]()
)

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func dottedKey(k toml.Key) string {
	parts := make([]string, len(k))
	for i, s := range k {
		parts[i] = tomlKey(s)
	}
	return strings.Join(parts, ".")
}

// knownKeys lists every dotted key of the document, tables included.
func knownKeys(t reflect.Type, prefix string, out []string) []string {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		out = append(out, prefix+name)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType && f.Type != syncIntervalType {
			out = knownKeys(f.Type, prefix+name+".", out)
		}
	}
	return out
}

// suggestKey proposes a known key for a misspelt or misplaced one.
func suggestKey(key string) string {
	known := knownKeys(reflect.TypeFor[Config](), "", nil)
	parent, leaf := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		parent, leaf = key[:i+1], key[i+1:]
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestDist := "", 3
	for _, k := range known {
		kp, kl := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			kp, kl = k[:i+1], k[i+1:]
		}
		if kp != parent {
			continue
		}
		if d := editDistance(norm(leaf), norm(kl)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return best
	}
	for _, k := range known {
		if strings.HasSuffix(k, "."+leaf) {
			return k
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
