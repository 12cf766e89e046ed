package ctl

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/consumer"
)

func newSetupCmd(o IO, _ func() *zap.Logger) *cobra.Command {
	var cfgPath, url string
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create or update the incident stream, the dead-letter stream and the durable consumer from the config",
		Long: `setup runs the same reconciliation the worker runs at start, as a separate deploy
step. Settings JetStream can change in place are updated and printed; a difference it
cannot apply (storage type, retention, ack or deliver policy, a push consumer of the same
name) is an error naming the field, the existing value and the wanted one.`,
		Example: `  incidentctl setup --config incidentd.toml
  NATS_URL=nats://nats.prod:4222 incidentctl setup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, o.Env)
			if err != nil {
				return err
			}
			target, err := resolveNATS(url, o, cfg.NATS, cfgPath, DefaultNATSURL)
			if err != nil {
				return err
			}
			nc, err := connect(target)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return fmt.Errorf("jetstream: %w", err)
			}
			rep, err := consumer.Setup(cmd.Context(), js, cfg.Consumer)
			for _, a := range rep.Actions {
				fmt.Fprintln(o.Out, a)
			}
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "TOML config `file` ([consumer], and [nats] url and credentials); defaults and environment apply without it")
	cmd.Flags().StringVar(&url, "nats-url", "", natsURLHelp)
	return cmd
}
