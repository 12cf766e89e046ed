package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Normalize returns a copy of in in the form the suite compares: times in
// UTC without monotonic readings, empty labels and resources as nil. Backends
// may return either form; they must keep everything else exactly.
func Normalize(in *incident.Incident) *incident.Incident {
	c := in.Clone()
	for _, p := range []*time.Time{&c.FirstSeen, &c.LastSeen, &c.CreatedAt, &c.UpdatedAt, &c.LatestEventAt, &c.FirstReceivedAt, &c.ResolvedReceivedAt, &c.LastReceivedAt, c.ResolvedAt, c.AcknowledgedAt} {
		if p != nil {
			*p = p.UTC()
		}
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	if len(c.Resources) == 0 {
		c.Resources = nil
	}
	return c
}

// Diff describes how got differs from want field by field (by JSON name),
// or returns "" when they are equal after Normalize.
func Diff(want, got *incident.Incident) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("want %v, got %v", want, got)
	}
	w, g := Normalize(want), Normalize(got)
	if reflect.DeepEqual(w, g) {
		return ""
	}
	wm, gm := fields(w), fields(g)
	var out []string
	for k, wv := range wm {
		if gv := gm[k]; gv != wv {
			out = append(out, fmt.Sprintf("%s: want %s, got %s", k, wv, gv))
		}
	}
	if len(out) == 0 { // equal JSON but not DeepEqual: e.g. a sub-microsecond time difference
		return fmt.Sprintf("want %#v\ngot  %#v", w, g)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func fields(in *incident.Incident) map[string]string {
	b, _ := json.Marshal(in)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	out := make(map[string]string, 32)
	for _, f := range reflect.VisibleFields(reflect.TypeFor[incident.Incident]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out[name] = string(m[name])
	}
	return out
}

// RequireEqual fails the test when got differs from want.
func RequireEqual(t testing.TB, what string, want, got *incident.Incident) {
	t.Helper()
	if d := Diff(want, got); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// RequireSame fails the test unless got holds the incidents of want, in the
// same order, each equal.
func RequireSame(t testing.TB, what string, want, got []*incident.Incident) {
	t.Helper()
	if !slices.Equal(ids(want), ids(got)) {
		t.Fatalf("%s: ids\nwant %v\ngot  %v", what, ids(want), ids(got))
	}
	for i := range want {
		if d := Diff(want[i], got[i]); d != "" {
			t.Fatalf("%s: incident %s: %s", what, want[i].ID, d)
		}
	}
}

func ids(ins []*incident.Incident) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.ID
	}
	return out
}

// Expect returns the incidents of all that match f, newest first: the
// independent expectation List is compared with.
func Expect(all []*incident.Incident, f storage.Filter) []*incident.Incident {
	var out []*incident.Incident
	for _, in := range all {
		if f.Match(in) {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, storage.CompareNewestFirst)
	return out
}

// ListAll returns every stored incident, newest first.
func ListAll(t testing.TB, s storage.Store) []*incident.Incident {
	t.Helper()
	got, err := s.List(context.Background(), storage.Filter{}, storage.Page{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return got
}

// CheckFilters compares List (whole and in pages of 7) and Count for every
// filter of Filters(all) with Expect over all, the incidents the store must
// hold exactly.
func CheckFilters(t testing.TB, s storage.Store, all []*incident.Incident) {
	t.Helper()
	for _, nf := range Filters(all) {
		CheckFilter(t, s, all, nf.Name, nf.Filter)
	}
}

// CheckFilter compares List and Count for one filter with Expect over all.
func CheckFilter(t testing.TB, s storage.Store, all []*incident.Incident, name string, f storage.Filter) {
	t.Helper()
	ctx := context.Background()
	want := Expect(all, f)
	got, err := s.List(ctx, f, storage.Page{})
	if err != nil {
		t.Fatalf("filter %s: list: %v", name, err)
	}
	RequireSame(t, "filter "+name, want, got)
	n, err := s.Count(ctx, f)
	if err != nil {
		t.Fatalf("filter %s: count: %v", name, err)
	}
	if n != int64(len(want)) {
		t.Fatalf("filter %s: count = %d, want %d", name, n, len(want))
	}
}

// NamedFilter is a filter with a name for failure messages.
type NamedFilter struct {
	Name   string
	Filter storage.Filter
}

// Filters returns the filters the suite checks over a set of incidents:
// the empty filter; each state, severity, type, present and absent source
// and fingerprint alone; active true and false; since and until on an
// existing last_seen (inclusive bounds); OR within a field; AND across
// fields.
func Filters(all []*incident.Incident) []NamedFilter {
	yes, no := true, false
	out := []NamedFilter{{"empty", storage.Filter{}}}
	add := func(name string, f storage.Filter) { out = append(out, NamedFilter{name, f}) }
	for _, st := range incident.States {
		add("state="+st.String(), storage.Filter{States: []incident.State{st}})
	}
	for _, sv := range incident.Severities {
		add("severity="+sv.String(), storage.Filter{Severities: []incident.Severity{sv}})
	}
	for _, ty := range incident.Types {
		add("type="+ty.String(), storage.Filter{Types: []incident.Type{ty}})
	}
	sources := append(distinct(all, func(in *incident.Incident) string { return in.Source }), "no-such-source")
	for _, src := range sources {
		add("source="+src, storage.Filter{Sources: []string{src}})
	}
	fps := distinct(all, func(in *incident.Incident) string { return in.Fingerprint })
	for i, fp := range fps {
		if i < 5 {
			add("fingerprint="+fp, storage.Filter{Fingerprints: []string{fp}})
		}
	}
	add("fingerprint=unknown", storage.Filter{Fingerprints: []string{"v1:unknown"}})
	add("active=true", storage.Filter{Active: &yes})
	add("active=false", storage.Filter{Active: &no})
	if len(all) > 0 {
		times := make([]time.Time, 0, len(all))
		for _, in := range all {
			times = append(times, in.LastSeen)
		}
		slices.SortFunc(times, time.Time.Compare)
		mid, q1, q3 := times[len(times)/2], times[len(times)/4], times[3*len(times)/4]
		add("since=median", storage.Filter{Since: mid})
		add("until=median", storage.Filter{Until: mid})
		add("since=q1,until=q3", storage.Filter{Since: q1, Until: q3})
		add("since=until=median", storage.Filter{Since: mid, Until: mid})
		add("since=after-last", storage.Filter{Since: times[len(times)-1].Add(time.Microsecond)})
		add("until=before-first", storage.Filter{Until: times[0].Add(-time.Microsecond)})
		add("until=median,active=true", storage.Filter{Until: mid, Active: &yes})
	}
	if len(fps) >= 3 {
		add("fingerprint=a|b|c", storage.Filter{Fingerprints: fps[:3]})
		add("fingerprint=a|b,state=Resolved|Detected", storage.Filter{Fingerprints: fps[:2], States: []incident.State{incident.Resolved, incident.Detected}})
	}
	add("state=Detected|Resolved", storage.Filter{States: []incident.State{incident.Detected, incident.Resolved}})
	add("state=Detected|Detected", storage.Filter{States: []incident.State{incident.Detected, incident.Detected}})
	add("severity=P0|P1", storage.Filter{Severities: []incident.Severity{incident.P0, incident.P1}})
	add("severity=P0|P1,state=Detected|Triaged", storage.Filter{Severities: []incident.Severity{incident.P0, incident.P1}, States: []incident.State{incident.Detected, incident.Triaged}})
	add("severity=P2,active=true", storage.Filter{Severities: []incident.Severity{incident.P2}, Active: &yes})
	add("state=Resolved,active=true", storage.Filter{States: []incident.State{incident.Resolved}, Active: &yes})
	add("state=Closed|Triaged,active=false", storage.Filter{States: []incident.State{incident.Closed, incident.Triaged}, Active: &no})
	if len(sources) >= 3 {
		add("source=a|b,type=Security|Data|Unknown", storage.Filter{Sources: sources[:2], Types: []incident.Type{incident.Security, incident.Data, incident.Unknown}})
		add("source=a,severity=P3|P4,active=false", storage.Filter{Sources: sources[:1], Severities: []incident.Severity{incident.P3, incident.P4}, Active: &no})
	}
	add("everything", storage.Filter{
		States: incident.States, Severities: incident.Severities, Types: incident.Types, Sources: sources,
		Since: Base.Add(-time.Hour), Until: Base.Add(1000 * time.Hour),
	})
	return out
}

func distinct(all []*incident.Incident, key func(*incident.Incident) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, in := range all {
		if k := key(in); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
