package deploy

import "testing"

// backendMetricNames lists the series the store backends register
// themselves (they need a live store to be gathered).
func backendMetricNames(t *testing.T) []string {
	t.Helper()
	return []string{
		"incidentd_pebble_compactions_total", "incidentd_pebble_flushes_total",
		"incidentd_pebble_read_amplification", "incidentd_pebble_write_stalls_total",
	}
}
