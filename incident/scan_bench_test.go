package incident

import (
	"testing"
)

// BenchmarkScan measures the strictness checks Decode runs before
// parsing: raw control bytes in strings and lone surrogate escapes.
func BenchmarkScan(b *testing.B) {
	payload := []byte(`{"id":"ev-1-123","source":"llm-gateway","type":"Performance","severity":"P1","title":"High P95 latency on gpt-4o (tenant-0042)","description":"the gateway observed sustained degradation across replicas while the evaluator flagged responses whose quality dropped below the agreed service level objective for this tenant and the guardrail pipeline rejected a growing share of completions after the last deployment","resources":["model/gpt-4o","region/us-east-1","deployment/llm-gateway-us-east-1"],"labels":{"model":"gpt-4o","region":"us-east-1","tenant":"tenant-0042","env":"prod"},"occurred_at":"2026-01-01T00:00:00.001Z","value":412.5,"unit":"ms"}`)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, bad := rawControl(payload); bad {
			b.Fatal("control")
		}
		if _, _, bad := loneSurrogate(payload); bad {
			b.Fatal("surrogate")
		}
	}
}
