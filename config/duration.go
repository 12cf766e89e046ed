package config

import (
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written in TOML as a Go duration string such
// as "100ms", "15m" or "168h". Bare TOML numbers are rejected (Load names the
// key): a unitless 900 could mean seconds or nanoseconds. It marshals to the
// same string form in TOML and JSON.
//
// The zero value is a zero duration; use the embedded field (d.Duration) to
// pass it to APIs taking a time.Duration.
type Duration struct {
	time.Duration
}

// UnmarshalText parses a duration string with time.ParseDuration. Its
// errors quote the value and say what a duration looks like, e.g.
// `"banana" is not a duration (like "30s")`.
func (d *Duration) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	v, err := time.ParseDuration(s)
	if err != nil {
		switch {
		case strings.HasSuffix(s, "d") && isNumber(s[:len(s)-1]):
			return fmt.Errorf("%q is not a duration: days are not a unit, use hours (like \"168h\")", s)
		case isNumber(s):
			return fmt.Errorf("%q is not a duration: it has no unit (like \"30s\" or \"15m\")", s)
		}
		return fmt.Errorf("%q is not a duration (like \"30s\", \"15m\" or \"1h30m\")", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in its shortest Go form ("15m", not
// "15m0s"), which UnmarshalText reads back.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String formats the duration like time.Duration.String without trailing
// zero units: "1m" rather than "1m0s", "168h" rather than "168h0m0s".
func (d Duration) String() string {
	return shortDuration(d.Duration)
}

func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func isNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' && r != '_' {
			return false
		}
	}
	return true
}
