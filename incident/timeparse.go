package incident

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime parses an RFC 3339 time, fractional seconds allowed. RFC 3339
// (section 5.6) lets the "T" separator and the "Z" zone be lower case,
// which Go's time.RFC3339 layout does not accept; the only letters a valid
// time holds are those two, so the string is upper-cased first when it has
// any. Surrounding white space is ignored. The syntax is RFC 3339's and
// nothing wider (Go's parser also takes a comma before the fraction and
// offsets such as +24:00 or +05:60). A leap second, second 60, is taken
// where one can fall: at 23:59:60 UTC on the last day of a month (in any
// offset: 05:29:60+05:30), and reads as the next instant, 00:00:00.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if !rfc3339Syntax(s) {
		return time.Time{}, fmt.Errorf("incident: %q is not an RFC 3339 time", s)
	}
	if strings.ContainsAny(s, "tz") {
		s = strings.ToUpper(s)
	}
	if s[17:19] != "60" {
		return time.Parse(time.RFC3339Nano, s)
	}
	t, err := time.Parse(time.RFC3339Nano, s[:17]+"59"+s[19:])
	if err != nil {
		return t, err
	}
	if u := t.UTC(); u.Hour() != 23 || u.Minute() != 59 || u.AddDate(0, 0, 1).Day() != 1 {
		return time.Time{}, fmt.Errorf("incident: %q: a leap second (second 60) falls only at 23:59:60 UTC on the last day of a month", s)
	}
	return t.Add(time.Second), nil
}

// rfc3339Syntax reports whether s has the form of RFC 3339's date-time:
// YYYY-MM-DDTHH:MM:SS, an optional "." and digits, then Z or ±HH:MM, with
// hours to 23, minutes to 59 and seconds to 60. The day of the month is
// left to time.Parse.
func rfc3339Syntax(s string) bool {
	if len(s) < 20 || !allDigits(s, 0, 4) || s[4] != '-' || !allDigits(s, 5, 7) || s[7] != '-' ||
		!allDigits(s, 8, 10) || (s[10] != 'T' && s[10] != 't') ||
		!clock(s[11:19], 60) {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z" || rest == "z":
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-'):
		return clock(rest[1:]+":00", 0)
	}
	return false
}

// clock reports whether c is HH:MM:SS with hours to 23, minutes to 59
// and seconds to maxSecond (0: the seconds are not checked beyond digits).
func clock(c string, maxSecond int) bool {
	if len(c) != 8 || !allDigits(c, 0, 2) || c[2] != ':' || !allDigits(c, 3, 5) || c[5] != ':' || !allDigits(c, 6, 8) {
		return false
	}
	num := func(i int) int { return int(c[i]-'0')*10 + int(c[i+1]-'0') }
	return num(0) <= 23 && num(3) <= 59 && (maxSecond == 0 || num(6) <= maxSecond)
}

// allDigits reports whether s[from:to] is all ASCII digits.
func allDigits(s string, from, to int) bool {
	for i := from; i < to; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// The years an event time may fall in.
const (
	minYear = 1970
	maxYear = 9999
)
