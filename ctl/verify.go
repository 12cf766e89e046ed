package ctl

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

func newVerifyCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that every incident decodes and the indexes agree with the records (exit 4 when not)",
		Long: `verify walks every incident and checks it (id, fingerprint, title, version, valid
state, severity and type, newest-first order, no duplicate id, Get returns the same
record), reading the records with the store's Scan (the export); then, for the whole
list and every value of every indexed field (state, severity, source, type, active),
that Count and a List walk through the index both find exactly the incidents whose
records have that value, newest first, none twice, and no index entry without a
record. On Redis it reads the index sets themselves instead of walking List
(SSCAN of each value's set, ZSCAN of llm-im:z:incidents, whose scores must be the
records' last_seen), a few hundred entries per command, so that it never blocks
the server for long. On a store it also checks the store's total counter (Stats, the gauge
incidentd_store_incidents) against the records, that each identity has at most
one active incident and that FindOpen names it, and on Redis that the sets of every
id (llm-im:incidents) and of each fingerprint (llm-im:fingerprint:{fp}) hold exactly
the ids of the records. Run it on a stopped worker's store, or
through --api-url on a quiet one (concurrent writes show up as differences).`,
		Example: `  incidentctl verify --state-backend pebble --state-path ./data/pebble
  incidentctl verify --api-url http://127.0.0.1:8080
  incidentctl verify --state-path ./data/pebble -o json   # a machine-readable report`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := verifyOutput(q.output)
			if err != nil {
				return err
			}
			r, store, closeR, err := q.reader(cmd.Context(), logger())
			if err != nil {
				return err
			}
			defer closeR()
			return verify(cmd.Context(), r, store, o.Out, asJSON)
		},
	}
	q.register(cmd, o)
	cmd.Flags().Lookup("output").Usage = "report format: text (default, also table) or json (one object: incidents, notes, checked, problems)"
	return cmd
}

// Verify checks r (and, when not nil, the identity pointers, the total
// counter and the backend's own indexes of store) as the verify command
// does, writing its findings to out as text. It returns an error wrapping
// ErrInconsistent when records and indexes disagree.
func Verify(ctx context.Context, r api.Reader, store storage.Store, out io.Writer) error {
	return verify(ctx, r, store, out, false)
}

func verify(ctx context.Context, r api.Reader, store storage.Store, out io.Writer, asJSON bool) error {
	v := verifier{r: r, store: store, out: out, asJSON: asJSON}
	v.rep.Problems, v.rep.Notes, v.rep.Checked = []string{}, []string{}, []string{}
	return v.run(ctx)
}

// verifyOutput reads verify's -o: text (or table, or empty) and json.
func verifyOutput(mode string) (bool, error) {
	switch mode {
	case "", "text", "table":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("%w: --output %q: want text or json", errUsage, mode)
}

// textProblems is how many problems the text report prints; jsonProblems
// how many the JSON report lists (problem_count counts them all).
const (
	textProblems = 50
	jsonProblems = 1000
)

// verifyReport is what verify found: the JSON report of -o json, and what
// the text report prints line by line.
type verifyReport struct {
	// Incidents is how many records verify read.
	Incidents int `json:"incidents"`
	// Consistent is true when no problem was found.
	Consistent bool `json:"consistent"`
	// ProblemCount counts every problem; Problems lists the first
	// jsonProblems, each as a text report's FAIL line says it.
	ProblemCount int      `json:"problem_count"`
	Problems     []string `json:"problems"`
	// Notes say what could not be checked, and why.
	Notes []string `json:"notes"`
	// Checked says what backend-specific checks ran (on Redis, the indexes
	// read directly and the id and fingerprint sets).
	Checked []string `json:"checked"`
}

type verifier struct {
	r      api.Reader
	store  storage.Store
	out    io.Writer
	asJSON bool
	rep    verifyReport
}

func (v *verifier) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.rep.ProblemCount++
	if len(v.rep.Problems) < jsonProblems {
		v.rep.Problems = append(v.rep.Problems, msg)
	}
	if !v.asJSON && v.rep.ProblemCount <= textProblems {
		fmt.Fprintf(v.out, "FAIL %s\n", msg)
	}
}

func (v *verifier) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.rep.Notes = append(v.rep.Notes, msg)
	if !v.asJSON {
		fmt.Fprintf(v.out, "note: %s\n", msg)
	}
}

func (v *verifier) checked(line string) {
	v.rep.Checked = append(v.rep.Checked, line)
	if !v.asJSON {
		fmt.Fprintln(v.out, line)
	}
}

func (v *verifier) run(ctx context.Context) error {
	all, err := v.read(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	steps := []func(context.Context, []*incident.Incident) error{v.records, v.totals, v.indexes}
	if v.store != nil {
		steps = append(steps, v.identities, v.backendIndexes)
	}
	for _, step := range steps {
		if err := step(ctx, all); err != nil {
			return err
		}
	}
	return v.finish()
}

// read collects every record with the reader's Scan (the export), which
// reads the records themselves, not an index: an index entry without its
// record cannot stop it. Incidents the full list finds and Scan does not
// (on Redis, a record missing from the id set Scan walks) are added, each
// a problem: an export would miss them. On an indexScanner the ids of the
// list's order index stand for the List walk (unscanned).
func (v *verifier) read(ctx context.Context) ([]*incident.Incident, error) {
	var warn strings.Builder
	all, err := readAll(ctx, v.r, &warn)
	if w := strings.TrimSpace(strings.TrimPrefix(warn.String(), "warning: ")); w != "" {
		v.note("%s", w)
	}
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(all))
	for _, in := range all {
		seen[in.ID] = true
	}
	var missed []*incident.Incident
	if sc, ok := v.store.(indexScanner); ok {
		missed, err = unscanned(ctx, v.r, sc, seen)
	} else {
		err = walkChecked(ctx, v.r, storage.Filter{}, func(in *incident.Incident) {
			if !seen[in.ID] {
				seen[in.ID] = true
				missed = append(missed, in)
			}
		}, func(int, error) {}) // reported by the index check of the whole list
	}
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	all = append(all, missed...)
	v.rep.Incidents = len(all)
	if !v.asJSON {
		fmt.Fprintf(v.out, "read %d incidents\n", len(all))
	}
	for _, in := range missed {
		v.fail("%s: listed, but the store's Scan (what export reads) does not return it", in.ID)
	}
	return all, nil
}

// finish prints the verdict (the JSON report with -o json) and returns
// ErrInconsistent when a problem was found.
func (v *verifier) finish() error {
	v.rep.Consistent = v.rep.ProblemCount == 0
	if v.asJSON {
		if err := writeJSON(v.out, v.rep); err != nil {
			return err
		}
	} else if v.rep.Consistent {
		fmt.Fprintln(v.out, "ok: records and indexes agree")
	}
	if v.rep.Consistent {
		return nil
	}
	noun := "problems"
	if v.rep.ProblemCount == 1 {
		noun = "problem"
	}
	return fmt.Errorf("%w: %d %s", ErrInconsistent, v.rep.ProblemCount, noun)
}

// records checks each record's fields, that no id comes twice and that Get
// answers the same record. The Gets, one round trip each, run lookups at a
// time, a chunk of records after the other, and are reported in order.
func (v *verifier) records(ctx context.Context, all []*incident.Incident) error {
	seen := make(map[string]bool, len(all))
	for lo := 0; lo < len(all); lo += lookupChunk {
		chunk := all[lo:min(lo+lookupChunk, len(all))]
		gets := make([]*incident.Incident, len(chunk))
		errs := make([]error, len(chunk))
		parallel(len(chunk), func(i int) { gets[i], errs[i] = v.r.Get(ctx, chunk[i].ID) })
		if err := ctx.Err(); err != nil {
			return err
		}
		for j, in := range chunk {
			switch {
			case in.ID == "":
				v.fail("record %d: empty id", lo+j)
			case seen[in.ID]:
				v.fail("%s: read twice", in.ID)
			}
			seen[in.ID] = true
			if in.Fingerprint == "" || in.Title == "" || in.Source == "" {
				v.fail("%s: empty fingerprint, title or source", in.ID)
			}
			if in.Version < 1 || !in.State.Valid() || !in.Severity.Valid() || !in.Type.Valid() {
				v.fail("%s: version %d, state %v, severity %v or type %v out of range", in.ID, in.Version, in.State, in.Severity, in.Type)
			}
			got, err := gets[j], errs[j]
			if err != nil {
				v.fail("%s: read but Get fails: %v", in.ID, err)
				continue
			}
			if got.Version != in.Version || !got.LastSeen.Equal(in.LastSeen) || got.State != in.State {
				v.fail("%s: Get answers version %d, the record read has version %d", in.ID, got.Version, in.Version)
			}
		}
	}
	return ctx.Err()
}

// lookups is how many Get or FindOpen calls verify keeps in flight, and
// lookupChunk how many it runs before reporting them: each is a round trip,
// and a large store has hundreds of thousands.
const (
	lookups     = 8
	lookupChunk = 4096
)

// parallel calls fn for each of 0 to n-1 on up to lookups goroutines and
// returns when every call has returned.
func parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(lookups, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// totals checks Count of everything and, on a store, Stats (the total
// counter behind incidentd_store_incidents) against the records.
func (v *verifier) totals(ctx context.Context, all []*incident.Incident) error {
	n, err := v.r.Count(ctx, storage.Filter{})
	switch {
	case err != nil && v.store == nil && len(all) > 0:
		// Through the API a Count reads a page: an entry without its
		// record at the head of the list fails it while the records read.
		v.fail("Count() fails (an index entry without its record at the head of the list?): %v", err)
	case err != nil:
		return fmt.Errorf("verify count: %w", err)
	case n != int64(len(all)):
		v.fail("Count() = %d, the records are %d", n, len(all))
	}
	if v.store == nil {
		v.note("the store's total counter (Stats, incidentd_store_incidents) is not checked through the API: verify the store itself (--state-* or --config) to check it")
		return nil
	}
	st, err := v.store.Stats(ctx)
	if err != nil {
		return fmt.Errorf("verify stats: %w", err)
	}
	if st.Incidents != int64(len(all)) {
		v.fail("total counter: Stats() counts %d incidents (incidentd_store_incidents), the records are %d", st.Incidents, len(all))
	}
	return nil
}

// identities checks at most one active incident per fingerprint and that
// FindOpen answers it (lookups at a time, reported in fingerprint order).
func (v *verifier) identities(ctx context.Context, all []*incident.Incident) error {
	active := map[string]string{}
	fps := map[string]bool{}
	for _, in := range all {
		fps[in.Fingerprint] = true
		if !in.Active() {
			continue
		}
		if other, ok := active[in.Fingerprint]; ok {
			v.fail("identity %s: two active incidents %s and %s", in.Fingerprint, other, in.ID)
		}
		active[in.Fingerprint] = in.ID
	}
	order := slices.Sorted(maps.Keys(fps))
	for lo := 0; lo < len(order); lo += lookupChunk {
		chunk := order[lo:min(lo+lookupChunk, len(order))]
		gots := make([]*incident.Incident, len(chunk))
		errs := make([]error, len(chunk))
		parallel(len(chunk), func(i int) { gots[i], errs[i] = v.store.FindOpen(ctx, chunk[i]) })
		if err := ctx.Err(); err != nil {
			return err
		}
		for j, fp := range chunk {
			got, err := gots[j], errs[j]
			want, ok := active[fp]
			switch {
			case err != nil && !ok:
				continue
			case err != nil:
				v.fail("identity %s: FindOpen fails (%v), %s is active", fp, err, want)
			case !ok:
				v.fail("identity %s: FindOpen answers %s, no record is active", fp, got.ID)
			case got.ID != want:
				v.fail("identity %s: FindOpen answers %s, the active record is %s", fp, got.ID, want)
			}
		}
	}
	return nil
}

// indexChecker is a store whose backend keeps indexes of its own that no
// storage.Store method reads in full (the Redis store's set of every id and
// its per-fingerprint sets). CheckIndexes compares them with records (every
// incident, as verify read them), calls fail once per disagreement, and
// returns what it checked; its error means it could not check.
type indexChecker interface {
	CheckIndexes(ctx context.Context, records []*incident.Incident, fail func(problem string)) (string, error)
}

// backendIndexes lets a store that is an indexChecker check its own
// indexes.
func (v *verifier) backendIndexes(ctx context.Context, all []*incident.Incident) error {
	c, ok := v.store.(indexChecker)
	if !ok {
		return nil
	}
	checked, err := c.CheckIndexes(ctx, all, func(p string) { v.fail("%s", p) })
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	v.checked(checked)
	return nil
}
