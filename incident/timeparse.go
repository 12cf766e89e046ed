package incident

import (
	"strings"
	"time"
)

// ParseTime parses an RFC 3339 time, fractional seconds allowed. RFC 3339
// (section 5.6) lets the "T" separator and the "Z" zone be lower case,
// which Go's time.RFC3339 layout does not accept; the only letters a valid
// time holds are those two, so the string is upper-cased first when it has
// any.
func ParseTime(s string) (time.Time, error) {
	if strings.ContainsAny(s, "tz") {
		s = strings.ToUpper(s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// The years an event time may fall in.
const (
	minYear = 1970
	maxYear = 9999
)
