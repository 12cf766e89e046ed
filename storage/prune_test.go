package storage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

// One retention walk deletes exactly the expired inactive incidents of
// random populations whose last_seen times tie in runs longer than a page,
// kept and expired incidents mixed within a tie, for page sizes from 1 up,
// and nothing else; a dry walk before it counts exactly those, and a walk
// after it finds nothing.
func TestPruneInactiveWalkRandom(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		limit := 1 + rng.IntN(8)
		t.Run(fmt.Sprintf("seed=%d/limit=%d", seed, limit), func(t *testing.T) {
			s := memory.New()
			defer s.Close()
			cutoff := storetest.At(1_000_000)
			n := 20 + rng.IntN(60)
			times := 1 + rng.IntN(n/2) // few distinct times: long ties
			expired := map[string]bool{}
			ins := make([]*incident.Incident, n)
			for i := range ins {
				in := storetest.SparseIncident(fmt.Sprintf("inc-%03d", i), fmt.Sprintf("v1:%03d", i))
				in.State = incident.States[rng.IntN(len(incident.States))]
				// last_seen spread around the cutoff, on a few shared times;
				// updated_at after last_seen, sometimes past the cutoff.
				in.LastSeen = storetest.At(int64(rng.IntN(times)) * 2_000_000 / int64(times))
				in.UpdatedAt = in.LastSeen.Add(time.Duration(rng.IntN(3)) * 300 * time.Millisecond)
				if rng.IntN(3) == 0 { // changed lately (an operator closed it): kept
					in.UpdatedAt = cutoff.Add(time.Second)
				}
				ins[i] = in
				if !in.State.Active() && in.LastSeen.Before(cutoff) && in.UpdatedAt.Before(cutoff) {
					expired[in.ID] = true
				}
			}
			storetest.Put(t, s, ins...)

			if n := walk(t, s, cutoff, limit, true); n != len(expired) {
				t.Fatalf("a dry walk counted %d, want %d", n, len(expired))
			}
			deleted := walk(t, s, cutoff, limit, false)
			if again := walk(t, s, cutoff, limit, false); again != 0 {
				t.Fatalf("a second walk deleted %d", again)
			}
			if deleted != len(expired) {
				t.Fatalf("deleted %d, want %d", deleted, len(expired))
			}
			left, err := s.List(ctx, storage.Filter{}, storage.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != n-len(expired) {
				t.Fatalf("%d incidents left, want %d", len(left), n-len(expired))
			}
			for _, in := range left {
				if expired[in.ID] {
					t.Fatalf("expired %s kept", in.ID)
				}
			}
		})
	}
}

// walk runs one whole retention walk, as incidentctl prune does, and
// returns how many incidents it deleted (or, dry, would delete).
func walk(t *testing.T, s storage.Store, cutoff time.Time, limit int, dry bool) int {
	t.Helper()
	ctx := context.Background()
	total := 0
	var from storage.PruneCursor
	for steps := 0; ; steps++ {
		if steps > 10_000 {
			t.Fatal("the walk does not end")
		}
		var n int
		var next storage.PruneCursor
		if dry {
			want, page, err := storage.ExpiredInactive(ctx, s, cutoff, from, limit)
			if err != nil {
				t.Fatal(err)
			}
			n, next = len(want), storage.NextPruneCursor(from, page, limit, nil)
		} else {
			var err error
			if n, next, err = storage.PruneInactive(ctx, s, cutoff, from, limit); err != nil {
				t.Fatal(err)
			}
		}
		total += n
		if next.Start() {
			return total
		}
		if !from.Start() && next.Until.After(from.Until) {
			t.Fatalf("the walk went back from %v to %v", from, next)
		}
		from = next
	}
}
