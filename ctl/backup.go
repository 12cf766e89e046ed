package ctl

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
)

// checkpointer is the Pebble store's consistent on-disk copy.
type checkpointer interface {
	Checkpoint(dir string) error
}

func newBackupCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var sf storeFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a consistent copy of a Pebble store (a checkpoint) to a new directory",
		Long: `backup opens the Pebble store and writes a checkpoint: a consistent copy, sstables
hard-linked where the filesystem allows, that opens like any data directory. The store
must not be held by a running worker (Pebble is single-process); for a hot logical backup
of a running worker use "incidentctl export --api-url ...". Redis is backed up with its
own tools (BGSAVE, the RDB or AOF files) or with export.`,
		Example: `  incidentctl backup --state-path ./data/pebble --to /backups/pebble-$(date +%Y%m%d)`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("%w: --to DIR is required", errUsage)
			}
			// The backend is the configuration's (pebble by default), so a
			// --config or STATE_BACKEND naming Redis is told so, before any
			// connection, instead of a checkpoint of some Pebble directory
			// at the default path.
			if st, _, err := sf.stateConfig(); err != nil {
				return err
			} else if st.Backend != config.BackendPebble {
				return noCheckpoint(st.Backend)
			}
			s, st, err := sf.open(cmd.Context(), logger())
			if err != nil {
				return err
			}
			defer s.Close()
			cp, ok := s.(checkpointer)
			if !ok {
				return noCheckpoint(st.Backend)
			}
			start := time.Now()
			if err := cp.Checkpoint(dir); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			stats, err := s.Stats(cmd.Context())
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(o.Out, "checkpoint of %s (%d incidents) written to %s in %s\n", st.Path, stats.Incidents, dir, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	sf.env = o.Env
	sf.locked = "Pebble admits one process, so stop the worker, back up and start it again; " +
		"for a logical copy of the running worker use incidentctl export --api-url URL --out FILE"
	sf.register(cmd.Flags(), "state", false)
	cmd.Flags().StringVar(&sf.config, "config", "", "TOML config `file` whose [state] table names the store")
	cmd.Flags().StringVar(&dir, "to", "", "new `directory` for the checkpoint (must not exist)")
	return cmd
}

// noCheckpoint is backup's error for a store that is not Pebble.
func noCheckpoint(b config.Backend) error {
	return fmt.Errorf("backup: the %s backend has no checkpoint: back Redis up with its own tools (BGSAVE, the RDB or AOF files) or with export; for a Pebble directory, give --state-backend pebble --state-path DIR", b)
}
