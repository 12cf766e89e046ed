package ctl_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestMigrateToRedisKeepsActiveSet: incidents migrated into Redis (through
// Apply, created in whatever state they had) land in llm-im:state:Active
// exactly when active, verify passes, and verify notices the set going
// wrong in either direction (a stale member, a missing one).
func TestMigrateToRedisKeepsActiveSet(t *testing.T) {
	src := filledPebble(t, 1500)
	s := openPebble(t, src)
	all := allIncidents(t, s)
	_ = s.Close()
	var active, inactive []string
	for _, in := range all {
		if in.Active() {
			active = append(active, in.ID)
		} else {
			inactive = append(inactive, in.ID)
		}
	}
	if len(active) == 0 || len(inactive) == 0 {
		t.Fatalf("fixture has %d active and %d inactive incidents, want both", len(active), len(inactive))
	}
	srv := redistest.StartStandalone(t, redistest.Options{})
	r := runCtl(t, nil, "", "migrate", "--from-backend", "pebble", "--from-path", src, "--to-backend", "redis", "--to-redis-url", srv.URL())
	mustCode(t, r, ctl.ExitOK)
	c := srv.Client(t)
	got := c.SMembers(t.Context(), "llm-im:state:Active").Val()
	slices.Sort(got)
	slices.Sort(active)
	if !slices.Equal(got, active) {
		t.Fatalf("SMEMBERS llm-im:state:Active: %d ids, want the %d active incidents", len(got), len(active))
	}
	to := []string{"--state-backend", "redis", "--state-redis-url", srv.URL()}
	mustCode(t, runCtl(t, nil, "", append([]string{"verify"}, to...)...), ctl.ExitOK)

	c.SAdd(t.Context(), "llm-im:state:Active", inactive[0])
	r = runCtl(t, nil, "", append([]string{"verify"}, to...)...)
	mustCode(t, r, ctl.ExitInconsistent)
	if !strings.Contains(r.out, "index active=true") {
		t.Errorf("verify of a stale active set:\n%s", r.out)
	}
	if !inconsistentRE.MatchString(r.err) {
		t.Errorf("verify of a stale active set: stderr %q, want it to match %s", r.err, inconsistentRE)
	}
	c.SRem(t.Context(), "llm-im:state:Active", inactive[0], active[0])
	r = runCtl(t, nil, "", append([]string{"verify"}, to...)...)
	mustCode(t, r, ctl.ExitInconsistent)
	if !strings.Contains(r.out, "index active=true") {
		t.Errorf("verify of an active set missing an incident:\n%s", r.out)
	}
	if !inconsistentRE.MatchString(r.err) {
		t.Errorf("verify of an active set missing an incident: stderr %q, want it to match %s", r.err, inconsistentRE)
	}
}

// inconsistentRE is verify's whole stderr when it finds problems: no
// package prefix ("ctl: ") in the message, the count with its noun.
var inconsistentRE = regexp.MustCompile(`^incidentctl: store is inconsistent: (1 problem|([2-9]|[1-9][0-9]+) problems)\n$`)
