package ctl

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

func newSetStateCmd(o IO, logger func() *zap.Logger) *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "set-state ID STATE",
		Short: "Set an incident's state as an operator: Triaged, Investigating, Remediating, Resolved or Closed",
		Long: `Set an incident's state as an operator, through a running worker's API (which must run
with http.allow_writes = true) or directly in a store.

The lifecycle allows: from an active state (Detected, Triaged, Investigating,
Remediating) to Triaged, Investigating or Remediating (leaving Detected records
acknowledged_at), to Resolved or Closed (resolved_at = now, resolved_by = operator);
from Resolved to Closed (the resolution stays). Closed is final, a resolved incident
does not become active again (the next trigger after its resolved_at opens a new
incident), and Detected is no target. Asking for the state the incident already has
changes nothing and succeeds.

Exit codes: 0 done (or nothing to change), 2 a wrong command line or an unknown
STATE, 3 no incident with that id, 5 the lifecycle refuses the change (the error
names both states), 1 anything else (writes disabled on the worker, the store
unreachable, concurrent writes that kept winning).

Against a store (--state-backend, --config), the change goes through the store's
version check, like a worker's writes: safe on Redis while workers run; a Pebble
directory can only be opened while no worker holds it.`,
		Example: `  incidentctl set-state 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e Investigating
  incidentctl set-state 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e resolved --api-url http://127.0.0.1:8080 -o json
  incidentctl set-state 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e Closed --state-backend redis --state-redis-url redis://127.0.0.1:6379/0
  incidentctl set-state 0193f6a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e Closed --state-backend pebble --state-path ./data/pebble   # worker stopped`,
		Args: idArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			to, err := api.ParseTarget(args[1])
			if err != nil {
				return fmt.Errorf("%w: STATE: %w", errUsage, err)
			}
			asJSON, err := q.json(o.Out)
			if err != nil {
				return err
			}
			in, changed, err := setState(cmd, &q, logger(), id, to)
			var te *incident.TransitionError
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return fmt.Errorf("set-state: %w", api.NotFound(id))
			case errors.As(err, &te):
				return fmt.Errorf("set-state: %w", err)
			case errors.Is(err, storage.ErrLeased):
				// Another writer's lease outlived storage.LeaseWaitLimit
				// (in the store, or a worker's 409 saying so): not lost races.
				return fmt.Errorf("set-state %s: %w", id, err)
			case errors.Is(err, storage.ErrConflict):
				return fmt.Errorf("set-state %s: concurrent writes kept changing the incident, try again: %w", id, err)
			case err != nil:
				return fmt.Errorf("set-state %s: %w", id, err)
			}
			if !changed {
				fmt.Fprintf(o.Err, "incidentctl: incident %q is %s already: nothing changed\n", id, in.State)
			}
			if asJSON {
				return writeJSON(o.Out, incident.NewView(in))
			}
			return writeDetail(o.Out, in)
		},
	}
	q.register(cmd, o)
	q.store.locked = "change it through the worker with --api-url (which needs http.allow_writes = true), or stop it first"
	return cmd
}

// setState changes the state through the API, or in the store the flags
// name.
func setState(cmd *cobra.Command, q *queryFlags, log *zap.Logger, id string, to incident.State) (*incident.Incident, bool, error) {
	if err := q.source(); err != nil {
		return nil, false, err
	}
	if !q.store.given() {
		if err := checkHTTPURL("--api-url", q.apiURL); err != nil {
			return nil, false, err
		}
		return newAPIClient(q.apiURL).SetState(cmd.Context(), id, to)
	}
	s, _, err := q.store.open(cmd.Context(), log)
	if err != nil {
		return nil, false, err
	}
	defer s.Close()
	ch, err := api.SetStateAnyCase(cmd.Context(), s, id, to, time.Now)
	if err != nil {
		return nil, false, err
	}
	return ch.Incident, ch.Changed, nil
}
