package ctl

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/storage/pebble"
)

func newRestoreCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var target string
	var move bool
	cmd := &cobra.Command{
		Use:   "restore CHECKPOINT_DIR --state-path DIR",
		Short: "Put a Pebble checkpoint (written by backup) in place as a worker's data directory",
		Long: `restore checks that CHECKPOINT_DIR holds a Pebble database that no process holds, copies
it into --state-path (or, with --move, renames it there), checks that the copy opens as a
store and prints its incident count. The target must not exist or be an empty directory: a
directory a running worker holds is refused (stop the worker first), and so is any other
content (move it aside). The copy is written and opened in a hidden directory inside the
target before its files are renamed into place, so a checkpoint that does not open leaves
the target as it was, and the checkpoint itself is not changed. --move opens the checkpoint
where it is and renames it: instant, but the checkpoint is gone and both directories must be
on one filesystem. Start the worker afterwards; events acked after the checkpoint are
replayed from JetStream if the stream still holds them.`,
		Example: `  incidentctl restore /backups/pebble-20260101 --state-path ./data/pebble
  incidentctl restore /backups/pebble-20260101 --state-path ./data/pebble --move`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: restore takes one CHECKPOINT_DIR, got %d arguments", errUsage, len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				return fmt.Errorf("%w: --state-path DIR is required (the data directory to restore into)", errUsage)
			}
			start := time.Now()
			r, err := pebble.Restore(cmd.Context(), args[0], target, move, logger())
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			how := "copied"
			if move {
				how = "moved"
			}
			fmt.Fprintf(o.Out, "checkpoint %s (%d incidents) %s to %s in %s\n", args[0], r.Incidents, how, target,
				time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "state-path", "", "the Pebble data `directory` to restore into (state.path); must not exist or be empty")
	cmd.Flags().BoolVar(&move, "move", false, "rename the checkpoint into place instead of copying it (one filesystem; the checkpoint is gone after)")
	return cmd
}
