package pebble

import "github.com/llm-im/incidentd/config"

// ConfigFrom maps the [state] table (path, applied_retention and
// [state.pebble]) onto a Config, for the backend factory.
func ConfigFrom(st config.StateConfig) Config {
	c := DefaultConfig()
	c.Path = st.Path
	c.CacheSizeMB = st.Pebble.CacheSizeMB
	c.MemtableSizeMB = st.Pebble.MemtableSizeMB
	c.BloomBitsPerKey = st.Pebble.BloomBitsPerKey
	c.RecordCacheMB = st.Pebble.RecordCacheMB
	c.Sync = st.Pebble.Sync
	c.AppliedRetention = st.AppliedRetention.Duration
	return c
}
