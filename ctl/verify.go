package ctl

import (
	"context"
	"fmt"
	"io"
	"slices"

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
record), then, for every value of every indexed field (state, severity, source, type,
active), that Count and a List walk through the index both find exactly the incidents
whose records have that value; on a store it also checks that each identity has at most
one active incident and that FindOpen names it, and on Redis that the sets of every
id (llm-im:incidents) and of each fingerprint (llm-im:fingerprint:{fp}) hold exactly
the ids of the records. Run it on a stopped worker's store, or
through --api-url on a quiet one (concurrent writes show up as differences).`,
		Example: `  incidentctl verify --state-backend pebble --state-path ./data/pebble
  incidentctl verify --api-url http://127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, store, closeR, err := q.reader(cmd.Context(), logger())
			if err != nil {
				return err
			}
			defer closeR()
			return Verify(cmd.Context(), r, store, o.Out)
		},
	}
	q.register(cmd, o)
	return cmd
}

// Verify checks r (and, when not nil, the identity pointers of store) as
// the verify command does, writing its findings to out. It returns an error
// wrapping ErrInconsistent when records and indexes disagree.
func Verify(ctx context.Context, r api.Reader, store storage.Store, out io.Writer) error {
	v := verifier{r: r, store: store, out: out}
	return v.run(ctx)
}

type verifier struct {
	r        api.Reader
	store    storage.Store
	out      io.Writer
	problems int
}

func (v *verifier) fail(format string, args ...any) {
	v.problems++
	if v.problems <= 50 {
		fmt.Fprintf(v.out, "FAIL "+format+"\n", args...)
	}
}

func (v *verifier) run(ctx context.Context) error {
	all, err := listAll(ctx, v.r)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	fmt.Fprintf(v.out, "read %d incidents\n", len(all))
	if err := v.records(ctx, all); err != nil {
		return err
	}
	if err := v.indexes(ctx, all); err != nil {
		return err
	}
	if v.store != nil {
		if err := v.identities(ctx, all); err != nil {
			return err
		}
		if err := v.backendIndexes(ctx, all); err != nil {
			return err
		}
	}
	if v.problems > 0 {
		noun := "problems"
		if v.problems == 1 {
			noun = "problem"
		}
		return fmt.Errorf("%w: %d %s", ErrInconsistent, v.problems, noun)
	}
	fmt.Fprintln(v.out, "ok: records and indexes agree")
	return nil
}

func (v *verifier) records(ctx context.Context, all []*incident.Incident) error {
	seen := make(map[string]bool, len(all))
	for i, in := range all {
		switch {
		case in.ID == "":
			v.fail("record %d: empty id", i)
		case seen[in.ID]:
			v.fail("%s: listed twice", in.ID)
		}
		seen[in.ID] = true
		if in.Fingerprint == "" || in.Title == "" || in.Source == "" {
			v.fail("%s: empty fingerprint, title or source", in.ID)
		}
		if in.Version < 1 || !in.State.Valid() || !in.Severity.Valid() || !in.Type.Valid() {
			v.fail("%s: version %d, state %v, severity %v or type %v out of range", in.ID, in.Version, in.State, in.Severity, in.Type)
		}
		if i > 0 && storage.CompareNewestFirst(all[i-1], in) > 0 {
			v.fail("%s: listed after %s but newer", in.ID, all[i-1].ID)
		}
		got, err := v.r.Get(ctx, in.ID)
		if err != nil {
			v.fail("%s: listed but Get fails: %v", in.ID, err)
			continue
		}
		if got.Version != in.Version || !got.LastSeen.Equal(in.LastSeen) || got.State != in.State {
			v.fail("%s: Get answers version %d, listed version %d", in.ID, got.Version, in.Version)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	n, err := v.r.Count(ctx, storage.Filter{})
	if err != nil {
		return fmt.Errorf("verify count: %w", err)
	}
	if n != int64(len(all)) {
		v.fail("Count() = %d, a List walk finds %d", n, len(all))
	}
	return nil
}

// indexes checks Count and List of every single-field filter against the
// records.
func (v *verifier) indexes(ctx context.Context, all []*incident.Incident) error {
	var filters []storage.Filter
	for _, s := range incident.States {
		filters = append(filters, storage.Filter{States: []incident.State{s}})
	}
	for _, s := range incident.Severities {
		filters = append(filters, storage.Filter{Severities: []incident.Severity{s}})
	}
	for _, t := range incident.Types {
		filters = append(filters, storage.Filter{Types: []incident.Type{t}})
	}
	var sources []string
	for _, in := range all {
		if !slices.Contains(sources, in.Source) {
			sources = append(sources, in.Source)
		}
	}
	for _, s := range sources {
		filters = append(filters, storage.Filter{Sources: []string{s}})
	}
	for _, b := range []bool{true, false} {
		filters = append(filters, storage.Filter{Active: &b})
	}
	for _, f := range filters {
		want := map[string]bool{}
		for _, in := range all {
			if f.Match(in) {
				want[in.ID] = true
			}
		}
		name := describe(f)
		n, err := v.r.Count(ctx, f)
		if err != nil {
			return fmt.Errorf("verify count %s: %w", name, err)
		}
		if n != int64(len(want)) {
			v.fail("index %s: Count = %d, records say %d", name, n, len(want))
		}
		got := map[string]bool{}
		err = walkFiltered(ctx, v.r, f, func(in *incident.Incident) {
			got[in.ID] = true
			if !want[in.ID] {
				v.fail("index %s: lists %s, whose record does not match", name, in.ID)
			}
		})
		if err != nil {
			return fmt.Errorf("verify list %s: %w", name, err)
		}
		for id := range want {
			if !got[id] {
				v.fail("index %s: misses %s", name, id)
			}
		}
	}
	return nil
}

// walkFiltered lists every incident matching f, a page at a time.
func walkFiltered(ctx context.Context, r api.Reader, f storage.Filter, fn func(*incident.Incident)) error {
	for off := 0; ; off += walkPage {
		page, err := r.List(ctx, f, storage.Page{Offset: off, Limit: walkPage})
		if err != nil {
			return err
		}
		for _, in := range page {
			fn(in)
		}
		if len(page) < walkPage {
			return nil
		}
	}
}

// identities checks at most one active incident per fingerprint and that
// FindOpen answers it.
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
	for fp := range fps {
		got, err := v.store.FindOpen(ctx, fp)
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
	fmt.Fprintln(v.out, checked)
	return nil
}

func describe(f storage.Filter) string {
	switch {
	case len(f.States) > 0:
		return "state=" + f.States[0].String()
	case len(f.Severities) > 0:
		return "severity=" + f.Severities[0].String()
	case len(f.Types) > 0:
		return "type=" + f.Types[0].String()
	case len(f.Sources) > 0:
		return "source=" + f.Sources[0]
	case f.Active != nil:
		return fmt.Sprintf("active=%t", *f.Active)
	}
	return "all"
}
