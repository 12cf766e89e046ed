package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/storage"
)

// prunePage is how many incidents one step of the prune walk lists (and
// deletes), as the worker's sweep does.
const prunePage = 1000

// pruneReport is prune's result, and its -o json object.
type pruneReport struct {
	// Cutoff is the time both last_seen and updated_at must be before.
	Cutoff time.Time `json:"cutoff"`
	// OlderThan is the retention the cutoff comes from.
	OlderThan string `json:"older_than"`
	// DryRun is true when nothing was deleted.
	DryRun bool `json:"dry_run"`
	// Incidents is how many were deleted (would be, in a dry run).
	Incidents int `json:"incidents"`
	// Compacted is true when --compact compacted the Pebble store after
	// the prune; the sizes are the store's on disk before and after it.
	Compacted       bool  `json:"compacted"`
	SizeBeforeBytes int64 `json:"size_before_bytes,omitempty"`
	SizeAfterBytes  int64 `json:"size_after_bytes,omitempty"`
}

// compacter is the Pebble store's whole-keyspace compaction.
type compacter interface {
	Compact(ctx context.Context) error
}

func newPruneCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var sf storeFlags
	var olderThan time.Duration
	var dryRun, compact bool
	var output string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete Resolved and Closed incidents whose last event and last change are older than a retention",
		Long: `prune deletes, directly in a store, the incidents that are Resolved or Closed and
whose last_seen and updated_at are both older than --older-than (by default the
configuration's state.incident_retention): what a worker with that retention deletes in
its sweep, in one walk instead of 4,000 per sweep. Open incidents are never deleted.
Each delete is conditional on the version read, so an incident changed meanwhile is
kept: prune is safe on Redis while workers run; a Pebble directory can only be opened
while no worker holds it. --dry-run counts what would be deleted and deletes nothing.
Pebble frees the disk space of deleted incidents as its compactions come to their files;
--compact (Pebble only) compacts the whole store after the prune, so it is freed at once.

Exit codes: 0 done, 2 a wrong command line or configuration (no retention given),
1 anything else (the store unreachable; what was deleted before stays deleted).`,
		Example: `  incidentctl prune --older-than 2160h --dry-run --state-path ./data/pebble   # worker stopped
  incidentctl prune --older-than 2160h --state-backend redis --state-redis-url redis://127.0.0.1:6379/0
  incidentctl prune --config /etc/incidentd/config.toml -o json   # its state.incident_retention
  incidentctl prune --older-than 2160h --compact --state-path ./data/pebble   # and free the disk space now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := verifyOutput(output)
			if err != nil {
				return err
			}
			st, _, err := sf.stateConfig()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("older-than") {
				olderThan = st.IncidentRetention.Duration
				if olderThan == 0 {
					return fmt.Errorf("%w: --older-than DURATION is required (the configuration's state.incident_retention is 0s: keep forever)", errUsage)
				}
			}
			if olderThan <= 0 {
				return fmt.Errorf("%w: --older-than must be positive, got %s", errUsage, olderThan)
			}
			if compact && dryRun {
				return fmt.Errorf("%w: --compact compacts after a prune; a --dry-run deletes nothing", errUsage)
			}
			s, st, err := sf.open(cmd.Context(), logger())
			if err != nil {
				return err
			}
			defer s.Close()
			cp, canCompact := s.(compacter)
			if compact && !canCompact {
				return fmt.Errorf("%w: --compact is for Pebble; the %s backend frees the memory of what it deletes at once", errUsage, st.Backend)
			}
			rep := pruneReport{Cutoff: time.Now().Add(-olderThan).UTC(), OlderThan: olderThan.String(), DryRun: dryRun}
			var walked atomic.Int64
			pr := startProgress(o.Err, func(elapsed time.Duration) string {
				return fmt.Sprintf("prune: %d incidents in %s", walked.Load(), elapsed.Round(time.Second))
			})
			rep.Incidents, err = prune(cmd.Context(), s, rep.Cutoff, dryRun, func(n int) { walked.Store(int64(n)) })
			pr.clear()
			if err != nil {
				return fmt.Errorf("prune (after %d incidents): %w", rep.Incidents, err)
			}
			if compact {
				if err := compactStore(cmd.Context(), s, cp, st.Path, &rep, o.Err); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(o.Out, rep)
			}
			return writePruneText(o.Out, rep)
		},
	}
	sf.env = o.Env
	sf.locked = "Pebble admits one process: stop the worker and prune, or set state.incident_retention and let its sweep prune"
	sf.register(cmd.Flags(), "state", false)
	cmd.Flags().StringVar(&sf.config, "config", "", "TOML config `file` whose [state] table names the store (and gives state.incident_retention)")
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "retention: delete inactive incidents whose last_seen and updated_at are older (e.g. 2160h); default the configuration's state.incident_retention")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")
	cmd.Flags().BoolVar(&compact, "compact", false, "Pebble: compact the whole store after the prune, freeing the disk space now")
	cmd.Flags().StringVarP(&output, "output", "o", "", "report format: text (default) or json")
	return cmd
}

// prune walks the inactive incidents past cutoff once, deleting them (or,
// with dryRun, counting them), and returns how many; report is given the
// running count after each step.
func prune(ctx context.Context, s storage.Store, cutoff time.Time, dryRun bool, report func(int)) (int, error) {
	total := 0
	var from storage.PruneCursor
	for {
		var n int
		var next storage.PruneCursor
		var err error
		if dryRun {
			want, page, lerr := storage.ExpiredInactive(ctx, s, cutoff, from, prunePage)
			n, next, err = len(want), storage.NextPruneCursor(from, page, prunePage, nil), lerr
		} else {
			n, next, err = storage.PruneInactive(ctx, s, cutoff, from, prunePage)
		}
		if err != nil {
			return total, err
		}
		total += n
		report(total)
		if next.Start() {
			return total, nil
		}
		from = next
	}
}

// compactStore compacts the pruned store, then closes it, recording the
// size on disk of its directory dir before and after in rep. The size after
// is read once the store is closed: Pebble deletes the files a compaction
// made obsolete in the background, and its Close waits for those deletions
// (its own DiskSpaceUsage still counts them right after the compaction,
// about double what is left on disk).
func compactStore(ctx context.Context, s storage.Store, cp compacter, dir string, rep *pruneReport, progressTo io.Writer) error {
	before, err := dirSize(dir)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	pr := startProgress(progressTo, func(elapsed time.Duration) string {
		return fmt.Sprintf("prune: compacting, %s", elapsed.Round(time.Second))
	})
	err = cp.Compact(ctx)
	pr.clear()
	if err != nil {
		return fmt.Errorf("prune (%d incidents deleted, compaction failed): %w", rep.Incidents, err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("prune: close after compaction: %w", err)
	}
	after, err := dirSize(dir)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	rep.Compacted, rep.SizeBeforeBytes, rep.SizeAfterBytes = true, before, after
	return nil
}

// dirSize is the total size of the regular files under dir, as du -sb
// counts them (less the directories themselves).
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while walked: Pebble's own files come and go
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return n, nil
}

func writePruneText(w io.Writer, r pruneReport) error {
	verb := "pruned"
	if r.DryRun {
		verb = "would prune (dry run)"
	}
	noun := "incidents"
	if r.Incidents == 1 {
		noun = "incident"
	}
	if _, err := fmt.Fprintf(w, "%s %d %s: Resolved or Closed, last seen and updated before %s (older than %s)\n",
		verb, r.Incidents, noun, r.Cutoff.Format(time.RFC3339), r.OlderThan); err != nil || !r.Compacted {
		return err
	}
	_, err := fmt.Fprintf(w, "compacted: %.1f MB on disk, %.1f MB before\n", float64(r.SizeAfterBytes)/1e6, float64(r.SizeBeforeBytes)/1e6)
	return err
}
