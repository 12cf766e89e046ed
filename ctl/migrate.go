package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
)

func newExportCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var q queryFlags
	var out string
	var array bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every incident as JSON lines (or one JSON array) to a file or stdout",
		Example: `  incidentctl export --state-backend pebble --state-path ./data/pebble > incidents.jsonl
  incidentctl export --api-url http://127.0.0.1:8080 --array --out incidents.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.output != "" && q.output != "json" {
				return fmt.Errorf("%w: --output %q: export writes JSON only (JSON lines, or one array with --array): want json", errUsage, q.output)
			}
			r, _, closeR, err := q.reader(cmd.Context(), logger())
			if err != nil {
				return err
			}
			defer closeR()
			all, err := readAll(cmd.Context(), r, o.Err)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if out != "" && out != "-" {
				var werr error // writeIncidents's errors say export already
				if err := writeFileWhole(out, func(w io.Writer) error { werr = writeIncidents(w, all, array); return werr }); err != nil {
					if werr != nil {
						return werr
					}
					return fmt.Errorf("export: %w", err)
				}
			} else if err := writeIncidents(o.Out, all, array); err != nil {
				return err
			}
			fmt.Fprintf(o.Err, "exported %d incidents\n", len(all))
			return nil
		},
	}
	q.register(cmd, o)
	cmd.Flags().Lookup("output").Usage = "output format: json only (JSON lines, or one array with --array)"
	cmd.Flags().StringVar(&out, "out", "", "output `file` (default stdout)")
	cmd.Flags().BoolVar(&array, "array", false, "one JSON array instead of JSON lines")
	return cmd
}

func newImportCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var to storeFlags
	var in string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Write incidents exported by `export` (JSON lines or array) into an empty store",
		Long: `import reads incidents as export writes them (JSON lines, or one JSON array) from a file or
stdin and writes them into an empty target store through its own Apply. Every record is
checked first, all of them before anything is written: an input with any record that is not
a valid incident (empty id, fingerprint, title or source, a missing state or severity,
unknown values, impossible times or counts, ...), an id twice, or two active incidents of
one identity is refused with exit 1, naming the line of each refused record and its
problems, and the target is left untouched. Records of the old system (LLM Incident Manager:
its JSON export, or JSON lines of its records) are converted first, fingerprinted with the
[dedupe] fields of --to-config (the defaults without it); see the README, "Migrating from LLM
Incident Manager".`,
		Example: `  incidentctl import -f incidents.jsonl --to-backend pebble --to-path ./data/pebble`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := to.checkTarget(); err != nil {
				return err
			}
			r := o.In
			if in != "" && in != "-" {
				f, err := os.Open(in)
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				r = f
			}
			// Every record is checked before the target is opened: an
			// input with any invalid record writes nothing.
			all, converted, err := importRecords(&to, r)
			if err != nil {
				return err
			}
			return copyInto(cmd, o, logger(), &to, all, converted)
		},
	}
	cmd.Flags().StringVarP(&in, "file", "f", "", "input `file` (default stdin)")
	to.register(cmd.Flags(), "to", true)
	to.env = o.Env
	return cmd
}

func newMigrateCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var from, to storeFlags
	var apiURL string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Copy every incident from one store to another (e.g. memory or Pebble to Redis)",
		Long: `migrate reads every incident of the source (a store, or with --from-api-url the API of a
running worker, which is how an in-memory worker's incidents are saved) and writes them
into an empty target store with their indexes. Versions restart at 1; applied-event markers
are not copied, so drain the stream and stop the workers before migrating. The whole source
is read and checked as import checks its input before the target is opened: any invalid
incident refuses the migration (exit 1, each named by id) and nothing is written.`,
		Example: `  incidentctl migrate --from-backend pebble --from-path ./data/pebble --to-backend redis --to-redis-url redis://127.0.0.1:6379/0
  incidentctl migrate --from-api-url http://127.0.0.1:8080 --to-backend pebble --to-path ./data/pebble`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !from.given() && apiURL == "" {
				return fmt.Errorf("%w: name the source with --from-backend/--from-config or --from-api-url", errUsage)
			}
			if from.given() && apiURL != "" {
				return fmt.Errorf("%w: --from-api-url and a source store (--from-config or --from-*) name two sources; give one", errUsage)
			}
			if from.given() && from.backend == string(config.BackendMemory) {
				return fmt.Errorf("%w: a memory store lives only inside its process: migrate from its worker with --from-api-url", errUsage)
			}
			r, _, closeR, err := openReader(cmd.Context(), &from, apiURL, "--from-api-url", logger())
			if old := (*redis.LegacyKeyspaceError)(nil); errors.As(err, &old) {
				return migrateLegacy(cmd, o, logger(), old, &to)
			}
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			if err := to.checkTarget(); err != nil {
				closeR()
				return err
			}
			all, err := readAll(cmd.Context(), r, o.Err)
			closeR()
			if err != nil {
				return fmt.Errorf("read source: %w", err)
			}
			// The whole source is in memory: check all of it before the
			// target is opened, so a refused source writes nothing.
			if err := checkSource(all); err != nil {
				return err
			}
			return copyInto(cmd, o, logger(), &to, all, "")
		},
	}
	from.register(cmd.Flags(), "from", true)
	to.register(cmd.Flags(), "to", true)
	from.env, to.env = o.Env, o.Env
	cmd.Flags().StringVar(&apiURL, "from-api-url", "", "read the source through a running worker's query API")
	return cmd
}

// copyInto opens the target, imports all and checks the count. converted,
// when not empty, is printed before the copy's line, once the target has
// taken the records.
func copyInto(cmd *cobra.Command, o IO, log *zap.Logger, to *storeFlags, all []*incident.Incident, converted string) error {
	if !to.given() {
		return fmt.Errorf("%w: name the target with --to-backend (and --to-path, --to-redis-url, ...) or --to-config", errUsage)
	}
	target, st, err := to.open(cmd.Context(), log)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer target.Close()
	start := time.Now()
	res, err := importInto(cmd.Context(), target, all, time.Now())
	if err != nil {
		return incomplete(err, res.Written, len(all), st)
	}
	n, err := target.Count(cmd.Context(), storage.Filter{})
	if err != nil {
		return fmt.Errorf("target count: %w", err)
	}
	if converted != "" {
		fmt.Fprintln(o.Out, converted)
	}
	fmt.Fprintf(o.Out, "copied %d incidents in %s (%d relinked) into %s, target now holds %d\n", res.Written, time.Since(start).Round(time.Millisecond), res.Relinked,
		describeStore(st), n)
	if int(n) != len(all) {
		return fmt.Errorf("target holds %d incidents, the source had %d", n, len(all))
	}
	if err := target.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
		return fmt.Errorf("target close: %w", err)
	}
	return nil
}

// incomplete adds to the error of a copy that stopped after it wrote some
// incidents (a write failing, Ctrl-C) that the target holds part of the
// input and must be emptied before a new run, which refuses a store that
// is not empty.
func incomplete(err error, written, total int, st config.StateConfig) error {
	if written == 0 || st.Backend == config.BackendMemory {
		return err
	}
	how := "delete its directory " + st.Path
	if st.Backend != config.BackendPebble {
		how = "delete the keys of its key prefix " + st.KeyPrefix + " with redis-cli, see the README, Moving and checking data"
	}
	return fmt.Errorf("%w\nthe target holds %d of the %d incidents, an incomplete copy: empty it before running again (%s)", err, written, total, how)
}
