package incident

import (
	"strings"
	"time"
)

// ParseTime parses an RFC 3339 time, fractional seconds allowed. RFC 3339
// (section 5.6) lets the "T" separator and the "Z" zone be lower case,
// which Go's time.RFC3339 layout does not accept; the only letters a valid
// time holds are those two, so the string is upper-cased first when it has
// any. Surrounding white space is ignored, and a leap second (23:59:60,
// also allowed) reads as the next instant, 00:00:00.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "tz") {
		s = strings.ToUpper(s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) > 19 && s[16] == ':' && s[17:19] == "60" {
		// A leap second, which RFC 3339 allows and Go's parser does not:
		// 23:59:60 is read as the instant after 23:59:59, 00:00:00.
		if lt, lerr := time.Parse(time.RFC3339Nano, s[:17]+"59"+s[19:]); lerr == nil {
			return lt.Add(time.Second), nil
		}
	}
	return t, err
}

// The years an event time may fall in.
const (
	minYear = 1970
	maxYear = 9999
)
