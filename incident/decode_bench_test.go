package incident

import "testing"

// BenchmarkDecode decodes a typical event with the schema's field names and
// one with the old system's (external_id, alert_type, affected_services).
func BenchmarkDecode(b *testing.B) {
	for name, payload := range map[string]string{
		"canonical": `{"id":"e-1","action":"trigger","source":"llm-gateway","type":"performance","severity":"high","title":"High latency","resources":["a","b"],"labels":{"model":"gpt-4o"},"occurred_at":"2026-03-01T10:00:00.5+01:00","value":2100.5,"unit":"ms"}`,
		"aliases":   `{"external_id":"e-1","source":"llm-gateway","alert_type":"performance","severity":"high","title":"High latency","affected_services":["a","b"],"occurred_at":"2026-03-01T10:00:00.5+01:00"}`,
	} {
		b.Run(name, func(b *testing.B) {
			d, data := NewDecoder(0), []byte(payload)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(data, testMeta); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
