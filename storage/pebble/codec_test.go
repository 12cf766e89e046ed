package pebble

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage/storetest"
)

func TestRecordRoundTrip(t *testing.T) {
	zero := storetest.SparseIncident("sparse", "fp")
	zero.FirstSeen, zero.LastSeen = time.Time{}, time.Time{}
	withEmpty := storetest.FullIncident("full-empty", "fp")
	withEmpty.Labels = map[string]string{}
	neg := storetest.FullIncident("neg", "fp\x00with\x00nul")
	v := math.Copysign(0, -1) // negative zero (the literal -0.0 is plain zero in Go)
	neg.LastValue, neg.LateCount = &v, -3
	for _, in := range []*incident.Incident{
		storetest.FullIncident("full", "fp-1"),
		storetest.SparseIncident("sparse", "fp-2"),
		zero, withEmpty, neg,
	} {
		rec, err := encodeRecord(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRecord(rec)
		if err != nil {
			t.Fatalf("%s: %v", in.ID, err)
		}
		if d := storetest.Diff(in, got); d != "" {
			t.Errorf("%s: %s", in.ID, d)
		}
		if in.LastValue != nil && math.Signbit(*in.LastValue) != math.Signbit(*got.LastValue) {
			t.Errorf("%s: last_value %v came back as %v", in.ID, *in.LastValue, *got.LastValue)
		}
		for i := range rec {
			if _, err := decodeRecord(rec[:i]); err == nil {
				t.Fatalf("%s: truncated to %d bytes decoded without error", in.ID, i)
			}
		}
		if in.FirstReceivedAt.IsZero() && in.ResolvedReceivedAt.IsZero() && in.LastReceivedAt.IsZero() { // as a build before the receipt times wrote it
			v2 := append([]byte{codecBinary}, rec[1:len(rec)-3]...)
			if got, err := decodeRecord(v2); err != nil || storetest.Diff(in, got) != "" {
				t.Errorf("%s: encoding 2: %v %s", in.ID, err, storetest.Diff(in, got))
			}
		}
		js, _ := json.Marshal(in)
		old, err := decodeRecord(append([]byte{codecJSON}, js...))
		if err != nil || storetest.Diff(in, old) != "" {
			t.Errorf("%s: JSON record: %v %s", in.ID, err, storetest.Diff(in, old))
		}
	}
}

func BenchmarkCodec(b *testing.B) {
	in := storetest.FullIncident("0193f0c2-7c4e-7c1a-9a55-3f1a2b3c4d5e", "3f1a2b3c4d5e6f708192a3b4c5d6e7f8")
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec, _ := encodeRecord(in)
			if _, err := decodeRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary-decode", func(b *testing.B) {
		rec, _ := encodeRecord(in)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			js, _ := json.Marshal(in)
			var out incident.Incident
			if err := json.Unmarshal(js, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRecordDecodeCopies checks that a decoded incident does not share
// memory with the value it came from: Pebble reuses an iterator's buffers.
func TestRecordDecodeCopies(t *testing.T) {
	in := storetest.FullIncident("0193f0c2-7c4e-7c1a-9a55-3f1a2b3c4d5e", "3f1a2b3c4d5e6f708192a3b4c5d6e7f8")
	rec, err := encodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rec {
		rec[i] = 'x'
	}
	if d := storetest.Diff(in, got); d != "" {
		t.Errorf("the decoded incident changed with its buffer: %s", d)
	}
}

// FuzzDecodeRecord holds decodeRecord to never panic, and a record it
// accepts to encode and decode again to the same incident.
func FuzzDecodeRecord(f *testing.F) {
	for _, in := range []*incident.Incident{
		storetest.FullIncident("full", "fp-1"),
		storetest.SparseIncident("sparse", "fp-2"),
	} {
		rec, err := encodeRecord(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Add([]byte{codecBinary3, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		in, err := decodeRecord(rec)
		if err != nil || rec[0] == codecJSON {
			return
		}
		again, err := encodeRecord(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record: %v", err)
		}
		if d := storetest.Diff(in, out); d != "" {
			t.Fatalf("re-encoded record differs: %s", d)
		}
	})
}
