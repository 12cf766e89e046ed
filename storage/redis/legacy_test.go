package redis_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestRefusesLegacyKeyspace: a keyspace holding the old system's records
// (the black-box finding: read as type Unknown, peak_severity P0, no
// resources, year-1 times, and written into by a read-only count) is
// refused at open with what was found and how to migrate, and the open
// writes nothing, whether or not an earlier build left its layout marker.
// Read then hands over every record for the migration.
func TestRefusesLegacyKeyspace(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	c := srv.Client(t)
	recs := redistest.ReadLegacyFixture(t, "../../"+redistest.LegacyFixture)
	redistest.SeedLegacy(t, c, "llm-im", recs)
	for _, marker := range []bool{false, true} {
		if marker {
			c.Set(ctx, "llm-im:schema", "2", 0) // what an earlier incidentctl count left
		}
		before := dump(t, c, "*")
		_, err := redis.New(redis.Config{URL: srv.URL()}, zaptest.NewLogger(t), nil)
		var le *redis.LegacyKeyspaceError
		if !errors.As(err, &le) {
			t.Fatalf("marker %t: open = %v, want a *LegacyKeyspaceError", marker, err)
		}
		if le.Prefix != "llm-im" || le.Incidents != int64(len(recs)) || le.Sampled != len(recs) || le.Old != len(recs) || le.Marker != marker ||
			!strings.HasPrefix(le.Example, "llm-im:incident:") {
			t.Errorf("marker %t: %+v", marker, le)
		}
		for _, s := range []string{"holds records of the old system (LLM Incident Manager)", "5 of 5 records sampled from llm-im:incidents (5 ids)",
			"nothing was written", "incidentctl migrate --from-backend redis"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("marker %t: the error does not say %q: %v", marker, s, err)
			}
		}
		if got := strings.Contains(err.Error(), "llm-im:schema and llm-im:state:Active were written by an earlier"); got != marker {
			t.Errorf("marker %t: the error names the marker: %t", marker, got)
		}
		sameDump(t, "after the refused open", before, dump(t, c, "*"))
		if n := c.Exists(ctx, "llm-im:state:Active").Val(); n != 0 {
			t.Errorf("marker %t: llm-im:state:Active written", marker)
		}
	}
	if n := c.Exists(ctx, "llm-im:schema").Val(); n != 1 {
		t.Fatal("the marker the test set is gone")
	}

	c.SAdd(ctx, "llm-im:incidents", "00000000-0000-4000-8000-000000000000") // an id with no record
	_, err := redis.New(redis.Config{URL: srv.URL()}, zaptest.NewLogger(t), nil)
	var le *redis.LegacyKeyspaceError
	if !errors.As(err, &le) {
		t.Fatalf("open = %v", err)
	}
	var ids []string
	missing, err := le.Read(ctx, func(id string, raw []byte) error {
		if want := c.Get(ctx, "llm-im:incident:"+id).Val(); string(raw) != want {
			t.Errorf("record %s: %s, want %s", id, raw, want)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil || missing != 1 {
		t.Fatalf("Read: %d missing, %v", missing, err)
	}
	slices.Sort(ids)
	if want := []string{"0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d", "6f1c2a9e-5b7d-4c3e-9a11-0d2f4e6b8c01", "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f",
		"d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f70", "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7081"}; !slices.Equal(ids, want) {
		t.Fatalf("Read ids %v, want %v", ids, want)
	}
}

// TestLegacyKeyspaceOtherPrefix: the old records under llm-im do not stop
// a store on another prefix of the same db (where a migration writes).
func TestLegacyKeyspaceOtherPrefix(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	c := srv.Client(t)
	redistest.SeedLegacy(t, c, "llm-im", redistest.ReadLegacyFixture(t, "../../"+redistest.LegacyFixture))
	s, err := redis.New(redis.Config{URL: srv.URL(), KeyPrefix: "llm-im2"}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}
