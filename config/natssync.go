package config

import (
	"fmt"
	"strings"
	"time"
)

// SyncInterval is nats.embedded_sync_interval: how often the embedded
// server's JetStream file store is flushed to disk (fsync), or after every
// message written ("always"). In TOML it is a duration string or "always".
type SyncInterval struct {
	// Always is true for "always": one fsync per message written.
	Always bool
	// Every is the interval between flushes when Always is false.
	Every time.Duration
}

// UnmarshalText reads "always" or a duration.
func (s *SyncInterval) UnmarshalText(text []byte) error {
	v := strings.TrimSpace(string(text))
	if strings.EqualFold(v, "always") {
		*s = SyncInterval{Always: true}
		return nil
	}
	var d Duration
	if err := d.UnmarshalText(text); err != nil {
		return fmt.Errorf("%w, or \"always\"", err)
	}
	*s = SyncInterval{Every: d.Duration}
	return nil
}

// MarshalText writes "always" or the interval as Duration does.
func (s SyncInterval) MarshalText() ([]byte, error) {
	if s.Always {
		return []byte("always"), nil
	}
	return Duration{s.Every}.MarshalText()
}

// String is the TOML form.
func (s SyncInterval) String() string {
	b, _ := s.MarshalText()
	return string(b)
}
