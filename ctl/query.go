package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// queryFlags are shared by get, list and count: where to read and how to
// print.
type queryFlags struct {
	apiURL string
	output string
	store  storeFlags
	flags  *pflag.FlagSet
}

// source checks that the flags name one source: a store (--config or a
// --state-* flag) and an explicit --api-url together are a usage error,
// not the store silently winning.
func (q *queryFlags) source() error {
	if q.store.given() && q.flags != nil && q.flags.Changed("api-url") {
		return fmt.Errorf("%w: --api-url and a store (--config or --state-*) name two sources; give one", errUsage)
	}
	return nil
}

// reader opens the source the flags name (see source).
func (q *queryFlags) reader(ctx context.Context, log *zap.Logger) (r api.Reader, store storage.Store, closeR func(), err error) {
	if err := q.source(); err != nil {
		return nil, nil, nil, err
	}
	return openReader(ctx, &q.store, q.apiURL, "--api-url", log)
}

func (q *queryFlags) register(cmd *cobra.Command, o IO) {
	fs := cmd.Flags()
	q.flags = fs
	def := o.env("INCIDENTD_API_URL")
	if def == "" {
		def = DefaultAPIURL
	}
	fs.StringVar(&q.apiURL, "api-url", def, "query API of a running worker (env INCIDENTD_API_URL)")
	fs.StringVarP(&q.output, "output", "o", "", "output format: table or json (default table on a terminal, json otherwise)")
	q.store.env = o.Env
	q.store.register(fs, "state", false)
	fs.StringVar(&q.store.config, "config", "", "TOML config `file`: read the store of its [state] table instead of the API")
}

func (q *queryFlags) json(w io.Writer) (bool, error) { return jsonOutput(q.output, w) }

// jsonOutput reads an -o value: "json", "table", or empty for a table on
// a terminal and JSON otherwise.
func jsonOutput(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "json":
		return true, nil
	case "table":
		return false, nil
	case "":
		return !terminal(w), nil
	}
	return false, fmt.Errorf("%w: --output %q: want table or json", errUsage, mode)
}

// filterFlags are the API's list filters, and with paging its page.
type filterFlags struct {
	states, severities, sources, types []string
	fingerprints                       []string
	active                             string
	since, until                       string
	paging                             bool
	limit, offset                      int
	changed                            func(name string) bool // the flag was given, even empty
}

func (f *filterFlags) register(cmd *cobra.Command, paging bool) {
	f.paging = paging
	fs := cmd.Flags()
	f.changed = fs.Changed
	// Arrays, not slices: each value reaches api.ParseQuery as given, which
	// splits the commas itself, so "P0,,P1" gets the API's message.
	fs.StringArrayVar(&f.states, "state", nil, "Detected, Triaged, Investigating, Remediating, Resolved, Closed (repeatable or comma-separated)")
	fs.StringArrayVar(&f.severities, "severity", nil, "P0..P4 or critical, high, medium, low, info")
	fs.StringArrayVar(&f.sources, "source", nil, "event source, e.g. llm-gateway")
	fs.StringArrayVar(&f.types, "type", nil, "Infrastructure, Application, Security, Data, Performance, Availability, Compliance, Unknown")
	fs.StringArrayVar(&f.fingerprints, "fingerprint", nil, "incident fingerprint (v1: and 32 hex digits): every incident of that identity, reopens included")
	fs.StringVar(&f.active, "active", "", "true: only active incidents, false: only resolved or closed")
	fs.StringVar(&f.since, "since", "", "last_seen at or after (RFC 3339, or a duration ago such as 1h)")
	fs.StringVar(&f.until, "until", "", "last_seen at or before (RFC 3339, or a duration ago)")
	if paging {
		fs.IntVar(&f.limit, "limit", api.DefaultLimit, "most incidents to show: 1 to 1000 through the API; reading a store, 0 shows all")
		fs.IntVar(&f.offset, "offset", 0, "incidents to skip")
	}
}

// query parses the flags with the API's own parser, so both accept the same
// values. The page is checked before anything is asked: through the API
// (store false) --limit is 1 to 1000; reading a store, 0 means no limit.
func (f *filterFlags) query(now time.Time, store bool) (api.Query, error) {
	v := map[string][]string{}
	add := func(k string, vals []string) {
		// A flag given empty (--fingerprint "$UNSET") reaches the parser,
		// which refuses it rather than matching everything.
		switch {
		case len(vals) > 0:
			v[k] = vals
		case f.changed != nil && f.changed(k):
			v[k] = []string{""}
		}
	}
	add("state", f.states)
	add("severity", f.severities)
	add("source", f.sources)
	add("type", f.types)
	add("fingerprint", f.fingerprints)
	if f.active != "" {
		v["active"] = []string{f.active}
	}
	for k, s := range map[string]string{"since": f.since, "until": f.until} {
		if s == "" {
			continue
		}
		if d, err := time.ParseDuration(s); err == nil {
			if d < 0 { // -5m would be a bound 5 minutes ahead, matching nothing
				return api.Query{}, fmt.Errorf("%w: --%s %q: a duration back from now is positive (5m, not -5m)", errUsage, k, s)
			}
			s = now.Add(-d).UTC().Format(time.RFC3339Nano)
		} else if _, err := incident.ParseTime(s); err != nil {
			return api.Query{}, fmt.Errorf("%w: --%s %q: neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration back from now (90m, 24h)", errUsage, k, s)
		}
		v[k] = []string{s}
	}
	q, err := api.ParseQuery(v)
	if err != nil {
		return q, fmt.Errorf("%w: %w", errUsage, err)
	}
	if !f.paging {
		return q, nil
	}
	switch {
	case f.offset < 0:
		return q, fmt.Errorf("%w: --offset %d: must not be negative", errUsage, f.offset)
	case f.limit < 0:
		return q, fmt.Errorf("%w: --limit %d: must not be negative", errUsage, f.limit)
	case !store && (f.limit < 1 || f.limit > api.MaxLimit):
		return q, fmt.Errorf("%w: --limit %d: through the API it must be 1 to %d (page with --offset; --limit 0 lists all only when reading a store: --config or a --state-* flag such as --state-path)",
			errUsage, f.limit, api.MaxLimit)
	}
	q.Page = storage.Page{Limit: f.limit, Offset: f.offset}
	return q, nil
}

func newGetCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one incident (exit code 3 when there is none)",
		Example: `  incidentctl get 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e
  incidentctl get 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e -o json --api-url http://127.0.0.1:8080
  incidentctl get 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e --state-backend pebble --state-path ./data/pebble`,
		Args: idArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := q.json(o.Out)
			if err != nil {
				return err
			}
			r, _, closeR, err := q.reader(cmd.Context(), logger())
			if err != nil {
				return err
			}
			defer closeR()
			in, err := api.GetAnyCase(cmd.Context(), r, args[0])
			if errors.Is(err, storage.ErrNotFound) {
				// The same words from a store as from a worker's API.
				return fmt.Errorf("get: %w", api.NotFound(args[0]))
			}
			if err != nil {
				return fmt.Errorf("get %s: %w", args[0], err)
			}
			if asJSON {
				return writeJSON(o.Out, incident.NewView(in))
			}
			return writeDetail(o.Out, in)
		},
	}
	q.register(cmd, o)
	return cmd
}

// idArgs checks for exactly n arguments, the first an incident ID that is
// not blank (an empty one would ask for the list's path).
func idArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return err
		}
		if strings.TrimSpace(args[0]) == "" {
			return fmt.Errorf("%w: ID is empty", errUsage)
		}
		return nil
	}
}

func newListCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var q queryFlags
	var f filterFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest last_seen first, with the API's filters",
		Example: `  incidentctl list --severity P0,P1 --active true --since 1h
  incidentctl list --fingerprint v1:224fb77285d35392f95e2ffd485c139b   # one identity, reopens included
  incidentctl list --state-backend pebble --state-path ./data/pebble --source llm-gateway --limit 0 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, qu, r, closeR, err := q.open(cmd.Context(), o, &f, logger())
			if err != nil {
				return err
			}
			defer closeR()
			resp, err := list(cmd, r, qu)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(o.Out, resp)
			}
			return writeTable(o.Out, resp)
		},
	}
	q.register(cmd, o)
	f.register(cmd, true)
	return cmd
}

// list answers a page and the total, from the API in one request or from a
// store with List and Count.
func list(cmd *cobra.Command, r api.Reader, q api.Query) (api.ListResponse, error) {
	ctx := cmd.Context()
	if c, ok := r.(*api.Client); ok {
		resp, err := c.Query(ctx, q)
		if err != nil {
			return resp, fmt.Errorf("list: %w", err)
		}
		return resp, nil
	}
	ins, err := r.List(ctx, q.Filter, q.Page)
	if err != nil {
		return api.ListResponse{}, fmt.Errorf("list: %w", err)
	}
	total, err := r.Count(ctx, q.Filter)
	if err != nil {
		return api.ListResponse{}, fmt.Errorf("count: %w", err)
	}
	if ins == nil {
		ins = []*incident.Incident{}
	}
	return api.ListResponse{Incidents: ins, Total: total}, nil
}

func newCountCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var q queryFlags
	var f filterFlags
	cmd := &cobra.Command{
		Use:   "count",
		Short: "Count the incidents matching the filters",
		Example: `  incidentctl count --active true --severity P0
  incidentctl count --fingerprint v1:224fb77285d35392f95e2ffd485c139b`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, qu, r, closeR, err := q.open(cmd.Context(), o, &f, logger())
			if err != nil {
				return err
			}
			defer closeR()
			n, err := r.Count(cmd.Context(), qu.Filter)
			if err != nil {
				return fmt.Errorf("count: %w", err)
			}
			if asJSON {
				return writeJSON(o.Out, map[string]int64{"count": n})
			}
			_, err = fmt.Fprintln(o.Out, n)
			return err
		},
	}
	q.register(cmd, o)
	f.register(cmd, false)
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, r api.ListResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEV\tSTATE\tSOURCE\tTYPE\tCOUNT\tLAST SEEN\tTITLE")
	for _, in := range r.Incidents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", in.ID, in.Severity, in.State, in.Source, in.Type,
			in.OccurrenceCount, in.LastSeen.UTC().Format(time.RFC3339), clip(in.Title, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d\n", len(r.Incidents), r.Total)
	return err
}

func writeDetail(w io.Writer, in *incident.Incident) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	ts := func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "" // not set (a zero time: imported, or written before it was kept)
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	row("id", in.ID)
	row("title", in.Title)
	row("state", in.State.String())
	row("severity", in.Severity.String()+" (peak "+in.PeakSeverity.String()+")")
	row("source", in.Source)
	row("type", in.Type.String())
	row("fingerprint", in.Fingerprint)
	row("dedup_key", in.DedupKey)
	row("resources", strings.Join(in.Resources, ", "))
	for _, k := range slices.Sorted(maps.Keys(in.Labels)) {
		v := in.Labels[k]
		if v == "" {
			v = `""` // a label set to nothing is still set
		}
		row("labels."+k, v)
	}
	row("occurrences", strconv.FormatInt(in.OccurrenceCount, 10))
	if in.LateCount > 0 {
		row("late_count", strconv.FormatInt(in.LateCount, 10))
	}
	row("first_seen", ts(&in.FirstSeen))
	row("last_seen", ts(&in.LastSeen))
	row("acknowledged_at", ts(in.AcknowledgedAt))
	row("resolved_at", ts(in.ResolvedAt))
	row("resolved_by", string(in.ResolvedBy))
	row("reopen_of", in.ReopenOf)
	if in.LastValue != nil {
		row("last_value", strings.TrimSpace(strconv.FormatFloat(*in.LastValue, 'g', -1, 64)+" "+in.Unit))
	} else {
		row("unit", in.Unit)
	}
	row("created_at", ts(&in.CreatedAt))
	row("updated_at", ts(&in.UpdatedAt))
	row("latest_event_at", ts(&in.LatestEventAt))
	row("latest_event_id", in.LatestEventID)
	row("first_received_at", ts(&in.FirstReceivedAt))
	row("description", clip(in.Description, 200))
	row("version", strconv.FormatInt(in.Version, 10))
	return tw.Flush()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// open parses the output mode and the filters, and opens the reader (API or
// store) the flags name.
func (q *queryFlags) open(ctx context.Context, o IO, f *filterFlags, log *zap.Logger) (asJSON bool, qu api.Query, r api.Reader, closeR func(), err error) {
	if asJSON, err = q.json(o.Out); err != nil {
		return
	}
	if qu, err = f.query(time.Now(), q.store.given()); err != nil {
		return
	}
	r, _, closeR, err = q.reader(ctx, log)
	return
}
