package dedupe

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// simStore is the smallest faithful store: incidents by id, the identity
// pointer and applied markers. It lets property tests fold across batches.
type simStore struct {
	byID    map[string]*incident.Incident
	latest  map[string]string
	applied map[string]bool
	stats   Stats
}

func newSim() *simStore {
	return &simStore{byID: map[string]*incident.Incident{}, latest: map[string]string{}, applied: map[string]bool{}}
}

func (s *simStore) ingest(f *Folder, batch []Keyed) {
	if d := s.ingestDeferred(f, batch); len(d) > 0 {
		panic("events deferred without Retry")
	}
}

// ingestDeferred is ingest, returning the positions of the events the fold
// deferred.
func (s *simStore) ingestDeferred(f *Folder, batch []Keyed) []int {
	latest := map[string]*incident.Incident{}
	for _, k := range batch {
		if id, ok := s.latest[k.Fingerprint]; ok {
			latest[k.Fingerprint] = s.byID[id]
		}
	}
	earlier := map[string]*incident.Incident{}
	for _, id := range NeedsEarlier(latest, batch) {
		if in, ok := s.byID[id]; ok {
			earlier[id] = in
		}
	}
	r := f.FoldEarlier(latest, earlier, s.applied, batch, t0)
	s.stats.Add(r.Stats)
	for _, in := range r.Incidents {
		if prev, ok := s.byID[in.ID]; ok && prev.Version != in.Version-1 {
			panic("version did not grow by one")
		}
		// What the fold writes is what import and migrate accept.
		if err := in.Validate(); err != nil {
			panic(fmt.Sprintf("the fold wrote an invalid incident %s v%d: %v", in.ID, in.Version, err))
		}
		s.byID[in.ID] = in
		if _, ok := s.latest[in.Fingerprint]; !ok || in.Version == 1 { // as Apply: an update never moves the pointer
			s.latest[in.Fingerprint] = in.ID
		}
	}
	for _, id := range r.EventIDs {
		s.applied[id] = true
	}
	return r.Deferred
}

// normalized renders the incidents without what legitimately depends on
// batching (versions) and, when dropIDs, on the order incidents were opened.
func (s *simStore) normalized(t *testing.T, dropIDs bool) []string {
	var out []string
	for _, in := range s.byID {
		c := in.Clone()
		c.Version = 0
		if dropIDs {
			c.ID, c.ReopenOf = "", ""
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// splitBatches folds log in random-sized batches.
func splitBatches(rng *rand.Rand, f *Folder, s *simStore, log []Keyed) {
	for len(log) > 0 {
		n := 1 + rng.IntN(min(len(log), 40))
		s.ingest(f, log[:n])
		log = log[n:]
	}
}

// mixedLog makes a random log of 10 to 89 events over three identities,
// 0 to 4 minutes apart, each up to skew older than the clock (some out of
// order): a tenth acknowledges, resolves tenths resolves, the rest
// triggers. With received, the stream receives them in log order.
func mixedLog(rng *rand.Rand, skew time.Duration, resolves int, received bool) []Keyed {
	var log []Keyed
	clock := time.Duration(0)
	for i := 0; i < 10+rng.IntN(80); i++ {
		fp := fmt.Sprintf("fp-%d", rng.IntN(3))
		clock += time.Duration(rng.Int64N(int64(4 * time.Minute)))
		at := clock - time.Duration(rng.Int64N(int64(skew)))
		id := fmt.Sprintf("e%d", i)
		var k Keyed
		switch r := rng.IntN(10); {
		case r == 0:
			k = ctl(id, fp, incident.Acknowledge, at)
		case r <= resolves:
			k = ctl(id, fp, incident.Resolve, at)
		default:
			k = trig(id, fp, at, incident.Severity(rng.IntN(5)))
		}
		if received {
			k = recv(k, i+1)
		}
		log = append(log, k)
	}
	return log
}

// For random trigger-only logs whose times lie within one quiet period, every
// permutation, batched any way, yields the same incidents.
func TestPropertyTriggersFoldOrderInsensitively(t *testing.T) {
	window := 15 * time.Minute
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var log []Keyed
		for i := 0; i < 5+rng.IntN(60); i++ {
			fp := fmt.Sprintf("fp-%d", rng.IntN(4))
			at := time.Duration(rng.Int64N(int64(window)))
			if rng.IntN(5) == 0 { // equal times exercise the id tie-break
				at = time.Minute
			}
			k := trig(fmt.Sprintf("e%d", i), fp, at, incident.Severity(rng.IntN(5)))
			k.Event.Labels = map[string]string{"n": fmt.Sprint(rng.IntN(3))}
			log = append(log, k)
		}
		base := newSim()
		base.ingest(NewFolder(window, counterIDs()), log)
		want := base.normalized(t, true)
		for p := 0; p < 5; p++ {
			perm := slices.Clone(log)
			rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			s := newSim()
			splitBatches(rng, NewFolder(window, counterIDs()), s, perm)
			if got := s.normalized(t, true); !slices.Equal(got, want) {
				t.Fatalf("seed %d permutation %d differs:\n%v\nwant\n%v", seed, p, got, want)
			}
		}
	}
}

// For random mixed logs (triggers, acknowledges, resolves; times spread over
// several quiet periods so timeouts, reopens and late triggers happen),
// duplicating any events, in one batch or across batches, yields the same
// incidents as the log without duplicates. A copy is placed anywhere after
// the original: redeliveries and producer retries come after the first send.
func TestPropertyDuplicatesChangeNothing(t *testing.T) {
	window := 10 * time.Minute
	var seen Stats
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		log := mixedLog(rng, 3*time.Minute, 1, false)
		base := newSim()
		splitBatches(rng, NewFolder(window, counterIDs()), base, log)
		want := base.normalized(t, false)

		dup := slices.Clone(log)
		for d := 0; d < 1+rng.IntN(len(log)); d++ {
			i := rng.IntN(len(dup))
			at := i + 1 + rng.IntN(len(dup)-i)
			dup = slices.Insert(dup, at, dup[i])
		}
		s := newSim()
		splitBatches(rng, NewFolder(window, counterIDs()), s, dup)
		if got := s.normalized(t, false); !slices.Equal(got, want) {
			t.Fatalf("seed %d: duplicates changed the incidents:\n%v\nwant\n%v", seed, got, want)
		}
		seen.Add(s.stats)
		// Replaying the whole log again changes nothing either.
		before := s.normalized(t, false)
		splitBatches(rng, NewFolder(window, counterIDs()), s, log)
		if got := s.normalized(t, false); !slices.Equal(got, before) {
			t.Fatalf("seed %d: replay changed the incidents", seed)
		}
	}
	// The random logs must exercise every rule, or the property says little.
	if seen.TimedOut == 0 || seen.Late == 0 || seen.Reopened == 0 || seen.Acknowledged == 0 || seen.Resolved == 0 ||
		seen.Orphans == 0 || seen.Duplicates == 0 || seen.Merged == 0 {
		t.Fatalf("rules not exercised: %+v", seen)
	}
}

// An incident's resources stop growing at incident.MaxIncidentResources:
// it keeps the first ones in sorted order, the same whatever order and
// batching the events came in, and every event still counts.
func TestResourcesCapped(t *testing.T) {
	const n = incident.MaxIncidentResources + 300
	var log []Keyed
	for i := range n {
		k := trig(fmt.Sprintf("e%05d", i), "fp", time.Duration(i)*time.Millisecond, incident.P2)
		k.Event.Resources = []string{fmt.Sprintf("pod-%05d", (i*7919)%n), fmt.Sprintf("pod-%05d", (i*104729+1)%n)}
		slices.Sort(k.Event.Resources)
		log = append(log, k)
	}
	var want []string
	for i := range incident.MaxIncidentResources {
		want = append(want, fmt.Sprintf("pod-%05d", i))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for p := range 4 {
		perm := slices.Clone(log)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		s := newSim()
		splitBatches(rng, NewFolder(time.Hour, counterIDs()), s, perm)
		if len(s.byID) != 1 {
			t.Fatalf("permutation %d: %d incidents, want 1", p, len(s.byID))
		}
		for _, in := range s.byID {
			if !slices.Equal(in.Resources, want) {
				t.Fatalf("permutation %d: %d resources %v ... %v, want the first %d in order", p, len(in.Resources),
					in.Resources[:3], in.Resources[len(in.Resources)-3:], incident.MaxIncidentResources)
			}
			if in.OccurrenceCount != n {
				t.Fatalf("permutation %d: occurrence_count %d, want %d", p, in.OccurrenceCount, n)
			}
		}
	}
}

// For random mixed logs taken in stream order (as one worker does), how
// the log is cut into batches changes nothing: folding it in one batch
// and in random batches yields the same incidents. Events are received in
// log order, and late triggers (older than a reopen, not after the
// resolve before it) are common, so a batch often holds a reopen and a
// late trigger of the incident it reopened, committed by an earlier batch
// (found by a black-box run: the late trigger was merged into the reopen).
func TestPropertyBatchingChangesNothing(t *testing.T) {
	window := 10 * time.Minute
	var seen Stats
	for seed := uint64(0); seed < 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 13))
		log := mixedLog(rng, 6*time.Minute, 2, true)
		base := newSim()
		base.ingest(NewFolder(window, counterIDs()), log)
		want := base.normalized(t, false)
		seen.Add(base.stats)
		for p := 0; p < 4; p++ {
			s := newSim()
			splitBatches(rng, NewFolder(window, counterIDs()), s, log)
			if got := s.normalized(t, false); !slices.Equal(got, want) {
				t.Fatalf("seed %d split %d: batching changed the incidents:\n%v\nwant\n%v", seed, p, got, want)
			}
		}
	}
	if seen.TimedOut == 0 || seen.Late == 0 || seen.Reopened == 0 || seen.Acknowledged == 0 || seen.Resolved == 0 || seen.Merged == 0 {
		t.Fatalf("rules not exercised: %+v", seen)
	}
}
