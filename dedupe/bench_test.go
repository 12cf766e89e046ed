package dedupe_test

import (
	"fmt"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
)

// workerGC runs the garbage collector as incidentd does (app.TuneRuntime:
// GOGC=400) unless GOGC is set, and restores the setting at the end.
func workerGC(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(400)
		b.Cleanup(func() { debug.SetGCPercent(old) })
	}
}

// payloads returns n realistic wire events with 30 % duplicates.
func payloads(n int) [][]byte {
	g := loadgen.New(loadgen.DefaultConfig())
	out := make([][]byte, n)
	for i := range out {
		out[i] = loadgen.Marshal(g.Next())
	}
	return out
}

// BenchmarkDecodeFingerprint measures the per-event CPU cost before the
// store: decode, validate and fingerprint, on one core, with the worker's GC
// setting.
func BenchmarkDecodeFingerprint(b *testing.B) {
	workerGC(b)
	msgs := payloads(4096)
	dec := incident.NewDecoder(0)
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	meta := incident.Meta{Stream: "INCIDENTS", Timestamp: time.Now()}
	var bytes int
	for _, m := range msgs {
		bytes += len(m)
	}
	b.SetBytes(int64(bytes / len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev, err := dec.Decode(msgs[i%len(msgs)], meta)
		if err != nil {
			b.Fatal(err)
		}
		_ = fp.Fingerprint(&ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecode isolates decoding and validation.
func BenchmarkDecode(b *testing.B) {
	msgs := payloads(4096)
	dec := incident.NewDecoder(0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := dec.Decode(msgs[i%len(msgs)], incident.Meta{Timestamp: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFold512 folds 512-event batches (30 % duplicates) against the
// incidents already open for their identities, as the worker does, with the
// worker's GC setting. The worker folds a batch it decoded a moment before,
// against incidents its Lookup decoded a moment before, so the fixtures
// cycle through 8 batches (about 8 MB, cache-resident);
// BenchmarkFold512Cold cycles through 64 (about 32 MB) and measures the
// same work with main-memory misses.
func BenchmarkFold512(b *testing.B) { benchFold(b, 8) }

// BenchmarkFold512Cold is BenchmarkFold512 over 64 batches of fixtures.
func BenchmarkFold512Cold(b *testing.B) { benchFold(b, 64) }

func benchFold(b *testing.B, nbatches int) {
	workerGC(b)
	g := loadgen.New(loadgen.DefaultConfig())
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	dec := incident.NewDecoder(0)
	const batch = 512
	batches := make([][]dedupe.Keyed, nbatches)
	for i := range batches {
		batches[i] = make([]dedupe.Keyed, batch)
		for j := range batches[i] {
			// Through the decoder, as the worker sees them.
			ev, err := dec.Decode(loadgen.Marshal(g.Next()), incident.Meta{})
			if err != nil {
				b.Fatal(err)
			}
			batches[i][j] = dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)}
		}
	}
	n := 0
	f := dedupe.NewFolder(0, func() string { n++; return fmt.Sprint(n) })
	// Build the state every batch starts from: the incidents of all batches
	// folded once, so merges find open incidents as in steady state.
	latest := map[string]*incident.Incident{}
	for _, bt := range batches {
		for _, in := range f.Fold(latest, nil, bt, time.Now()).Incidents {
			latest[in.Fingerprint] = in
		}
	}
	// Each batch gets what Lookup returns for it: the latest incident of
	// each of its fingerprints, not the whole state.
	snaps := make([]map[string]*incident.Incident, len(batches))
	for i, bt := range batches {
		snaps[i] = make(map[string]*incident.Incident, len(bt))
		for _, k := range bt {
			if in, ok := latest[k.Fingerprint]; ok {
				snaps[i][k.Fingerprint] = in
			}
		}
	}
	applied := map[string]bool{}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Fold(snaps[i%len(batches)], applied, batches[i%len(batches)], now)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
