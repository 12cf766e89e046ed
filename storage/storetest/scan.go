package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// scanPopulation is larger than one chunk of every backend's Scan (512
// records), so the walk crosses chunk boundaries.
const scanPopulation = 1300

// putChunked writes incidents in batches of 100, in order (a reopen after
// what it reopens), each incident with a fresh event id.
func putChunked(t *testing.T, s storage.Store, ins []*incident.Incident) {
	t.Helper()
	for lo := 0; lo < len(ins); lo += 100 {
		hi := min(lo+100, len(ins))
		b := storage.Batch{At: Base}
		for _, in := range ins[lo:hi] {
			b.Incidents = append(b.Incidents, in)
			b.EventIDs = append(b.EventIDs, fmt.Sprintf("put:%s:v%d", in.ID, in.Version))
		}
		if err := s.Apply(context.Background(), b); err != nil {
			t.Fatalf("apply incidents %d..%d: %v", lo, hi-1, err)
		}
	}
}

// testScan: Scan passes every incident exactly once, as stored, and stops
// at its callback's first error.
func testScan(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	all := Population(scanPopulation, 7)
	putChunked(t, s, all)
	got := map[string]int{}
	err := s.Scan(ctx, func(in *incident.Incident) error {
		got[in.ID]++
		if got[in.ID] == 1 {
			want, err := s.Get(ctx, in.ID)
			if err != nil {
				return err
			}
			if d := Diff(want, in); d != "" {
				return fmt.Errorf("%s differs from Get: %s", in.ID, d)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	requireEachOnce(t, got, all)

	stop := errors.New("enough")
	calls := 0
	err = s.Scan(ctx, func(*incident.Incident) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("scan stopped by its callback: err %v after %d calls, want %v after 3", err, calls, stop)
	}
}

// testScanWhileWriting: incidents updated during a Scan (last_seen moved
// past every other, the move that made paging by last_seen miss them) and
// incidents created meanwhile never make the scan miss or repeat one that
// existed throughout; each comes back as one of its stored versions.
func testScanWhileWriting(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	all := Population(scanPopulation, 8)
	putChunked(t, s, all)
	versions := map[string]map[int64]bool{}
	for _, in := range all {
		versions[in.ID] = map[int64]bool{in.Version: true}
	}
	got := map[string]int{}
	calls, created := 0, 0
	err := s.Scan(ctx, func(in *incident.Incident) error {
		got[in.ID]++
		if vs := versions[in.ID]; vs != nil && !vs[in.Version] {
			return fmt.Errorf("%s came back at version %d, never stored", in.ID, in.Version)
		}
		calls++
		if calls%100 != 1 {
			return nil
		}
		// Move the 20 oldest-listed incidents not updated yet to the front
		// of every list, and open 5 new ones.
		var b storage.Batch
		b.At = Base
		for i := 0; i < len(all) && len(b.Incidents) < 20; i++ {
			in := all[(calls*7+i*13)%len(all)]
			if len(versions[in.ID]) > 1 {
				continue
			}
			up := Update(in, func(c *incident.Incident) { c.LastSeen = At(int64(1e12 + calls)) })
			versions[in.ID][up.Version] = true
			b.Incidents = append(b.Incidents, up)
			b.EventIDs = append(b.EventIDs, fmt.Sprintf("scan-update:%s", in.ID))
		}
		for range 5 {
			created++
			n := SparseIncident(fmt.Sprintf("new-%04d", created), fmt.Sprintf("v1:new%d", created))
			b.Incidents = append(b.Incidents, n)
			b.EventIDs = append(b.EventIDs, "scan-new:"+n.ID)
		}
		return s.Apply(ctx, b)
	})
	if err != nil {
		t.Fatalf("scan while writing: %v", err)
	}
	for id, n := range got {
		if n > 1 {
			t.Errorf("%s passed %d times", id, n)
		}
	}
	requireEachOnce(t, got, all)
}

// testScanClosed: a store closed during a Scan ends it with ErrClosed (or,
// where the scan holds its snapshot in memory, lets it finish) without
// hanging or failing otherwise.
func testScanClosed(t *testing.T, h Harness) {
	s := h.Open(t)
	putChunked(t, s, Population(scanPopulation, 9))
	done := make(chan error, 1)
	go func() {
		calls := 0
		done <- s.Scan(context.Background(), func(*incident.Incident) error {
			calls++
			if calls == 1 {
				if err := s.Close(); err != nil {
					return fmt.Errorf("close: %w", err)
				}
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("scan of a store closed meanwhile: %v, want nil or ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scan of a store closed meanwhile did not end")
	}
}

// requireEachOnce fails unless every incident of want was passed exactly
// once.
func requireEachOnce(t *testing.T, got map[string]int, want []*incident.Incident) {
	t.Helper()
	missing := 0
	for _, in := range want {
		switch n := got[in.ID]; {
		case n == 0:
			missing++
			if missing <= 5 {
				t.Errorf("%s missing from the scan", in.ID)
			}
		case n > 1:
			t.Errorf("%s passed %d times", in.ID, n)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d incidents missing from the scan", missing, len(want))
	}
}
