package dedupe

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// orderLog makes a random stream for a few identities, each: perhaps
// acknowledges or resolves before any trigger (orphans), a first trigger,
// more triggers with at most one acknowledge among them, and perhaps a
// resolve after them all; event times at random within one quiet period.
// The identities' events interleave at random; Received is the position
// in the stream.
func orderLog(rng *rand.Rand) []Keyed { return orderLogOf(rng, false) }

// orderLogOf is orderLog; with reopen, triggers may follow an identity's
// resolve, and event times grow with the stream order of each identity.
func orderLogOf(rng *rand.Rand, reopen bool) []Keyed {
	var per [][]Keyed
	for id := range 1 + rng.IntN(12) {
		fp := fmt.Sprintf("fp-%d", id)
		n := 0
		ev := func(a incident.Action) Keyed {
			n++
			k := ctl(fmt.Sprintf("%s-%d", fp, n), fp, a, time.Duration(rng.IntN(300))*time.Second)
			if a == incident.Trigger {
				k = trig(k.Event.ID, fp, time.Duration(rng.IntN(300))*time.Second, incident.Severity(rng.IntN(5)))
			}
			return k
		}
		var evs []Keyed
		for range rng.IntN(2) {
			evs = append(evs, ev([]incident.Action{incident.Acknowledge, incident.Resolve}[rng.IntN(2)]))
		}
		evs = append(evs, ev(incident.Trigger))
		acked := false
		for range rng.IntN(5) {
			if !acked && rng.IntN(3) == 0 {
				acked = true
				evs = append(evs, ev(incident.Acknowledge))
				continue
			}
			evs = append(evs, ev(incident.Trigger))
		}
		if rng.IntN(3) > 0 {
			evs = append(evs, ev(incident.Resolve))
		}
		if reopen {
			for range rng.IntN(3) {
				evs = append(evs, ev([]incident.Action{incident.Trigger, incident.Trigger, incident.Resolve}[rng.IntN(3)]))
			}
			for i := range evs {
				evs[i].Event.OccurredAt = t0.Add(time.Duration(i) * time.Second)
			}
		}
		per = append(per, evs)
	}
	var log []Keyed
	for len(per) > 0 {
		i := rng.IntN(len(per))
		log = append(log, per[i][0])
		if per[i] = per[i][1:]; len(per[i]) == 0 {
			per = slices.Delete(per, i, i+1)
		}
	}
	for i := range log {
		log[i].Received = t0.Add(time.Duration(i+1) * time.Millisecond)
	}
	return log
}

// TestFoldCommitOrderProperty: cut a stream into batches and commit them in
// any order, as several workers do, redelivering what the fold defers
// after every batch before it; the incidents and the counts are those of
// the stream folded in order. The logs have no trigger after a resolve of
// the same identity and at most one acknowledge per incident: the limits
// the README states.
func TestFoldCommitOrderProperty(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 11))
		inOrder, shuffled := commitOrders(rng, orderLog(rng))
		shuffled.stats.Deferred = 0
		if inOrder.stats != shuffled.stats {
			t.Fatalf("seed %d: stats in order %+v, in commit order %+v", seed, inOrder.stats, shuffled.stats)
		}
		want, got := inOrder.normalized(t, true), shuffled.normalized(t, true)
		if !slices.Equal(want, got) {
			t.Fatalf("seed %d: in order\n%v\nin commit order\n%v", seed, want, got)
		}
	}
}

// TestFoldCommitOrderOpenIncidents: with triggers after a resolve too (the
// case the fold cannot undo exactly), whatever the commit order, each
// identity ends with an open incident exactly when the stream folded in
// order leaves one, and never with two.
func TestFoldCommitOrderOpenIncidents(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 13))
		inOrder, shuffled := commitOrders(rng, orderLogOf(rng, true))
		want, got := inOrder.open(t), shuffled.open(t)
		if !maps.Equal(want, got) {
			t.Fatalf("seed %d: open incidents per identity: in order %v, in commit order %v", seed, want, got)
		}
	}
}

// open counts the open incidents of each identity, failing on two.
func (s *simStore) open(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, in := range s.byID {
		if !in.Active() {
			continue
		}
		if out[in.Fingerprint] {
			t.Fatalf("two open incidents of %s", in.Fingerprint)
		}
		out[in.Fingerprint] = true
	}
	return out
}

// commitOrders folds log in order, and cut into batches committed in a
// random order, redelivering what the fold defers after every batch
// before it, at most twice.
func commitOrders(rng *rand.Rand, log []Keyed) (inOrder, shuffled *simStore) {
	inOrder = newSim()
	inOrder.ingest(NewFolder(15*time.Minute, counterIDs()), log)

	var queue [][]Keyed
	for rest := log; len(rest) > 0; {
		n := min(1+rng.IntN(6), len(rest))
		queue = append(queue, rest[:n])
		rest = rest[n:]
	}
	rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	shuffled = newSim()
	f := NewFolder(15*time.Minute, counterIDs())
	tries := map[string]int{}
	for len(queue) > 0 {
		batch := slices.Clone(queue[0])
		queue = queue[1:]
		for i := range batch {
			batch[i].Retry = tries[batch[i].Event.ID] < 2
		}
		deferred := shuffled.ingestDeferred(f, batch)
		var again []Keyed
		for _, i := range deferred {
			tries[batch[i].Event.ID]++
			again = append(again, batch[i])
		}
		if len(again) > 0 {
			queue = append(queue, again)
		}
	}
	return inOrder, shuffled
}
