package incident

import (
	"testing"
)

// BenchmarkScan measures the scanner's one pass over a realistic payload:
// JSON syntax, raw control bytes in strings, lone surrogate escapes, and
// where each member's value lies.
func BenchmarkScan(b *testing.B) {
	payload := []byte(`{"id":"ev-1-123","source":"llm-gateway","type":"Performance","severity":"P1","title":"High P95 latency on gpt-4o (tenant-0042)","description":"the gateway observed sustained degradation across replicas while the evaluator flagged responses whose quality dropped below the agreed service level objective for this tenant and the guardrail pipeline rejected a growing share of completions after the last deployment","resources":["model/gpt-4o","region/us-east-1","deployment/llm-gateway-us-east-1"],"labels":{"model":"gpt-4o","region":"us-east-1","tenant":"tenant-0042","env":"prod"},"occurred_at":"2026-01-01T00:00:00.001Z","value":412.5,"unit":"ms"}`)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		var f fields
		s := scanner{data: payload, control: -1, surrogate: -1}
		if !s.top(&f) || s.err != "" || s.control >= 0 || s.surrogate >= 0 || f.labels.n != 4 {
			b.Fatalf("scan: %q", s.err)
		}
	}
}
