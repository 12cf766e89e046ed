package redistest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// LegacyFixture is the old system's "Export to JSON" the tests share
// (serde_json::to_string_pretty of a Vec<Incident>), relative to the
// module's root.
const LegacyFixture = "legacy/testdata/export.json"

// ReadLegacyFixture reads the records of LegacyFixture, whose path is
// given from the test's package directory (e.g. "../../" +
// LegacyFixture).
func ReadLegacyFixture(t testing.TB, path string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// SeedLegacy writes records of the old system (LLM Incident Manager) under
// prefix as its Redis store wrote them: the compact JSON at
// prefix:incident:{id}, the id in prefix:incidents, prefix:severity:{P0..},
// prefix:state:{Detected..}, prefix:source:{source} and, when the record
// has one, prefix:fingerprint:{fingerprint}.
func SeedLegacy(t testing.TB, c goredis.UniversalClient, prefix string, records []json.RawMessage) {
	t.Helper()
	ctx := context.Background()
	for _, raw := range records {
		var r struct {
			ID, State, Severity, Source string
			Fingerprint                 *string
		}
		var compact bytes.Buffer
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&compact, raw); err != nil {
			t.Fatal(err)
		}
		p := c.TxPipeline()
		p.Set(ctx, prefix+":incident:"+r.ID, compact.String(), 0)
		for _, set := range []string{"incidents", "severity:" + r.Severity, "state:" + r.State, "source:" + r.Source} {
			p.SAdd(ctx, prefix+":"+set, r.ID)
		}
		if r.Fingerprint != nil {
			p.SAdd(ctx, prefix+":fingerprint:"+*r.Fingerprint, r.ID)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
