package redisurl

import (
	"net/url"
	"slices"
	"strings"
)

// Masked replaces every secret Redact hides, as url.URL.Redacted does.
const Masked = "xxxxx"

// plainParams are the query parameters whose values Redact shows: the
// known ones that are no secret. The value of any other parameter, known
// or not (a misspelt sentinel_pasword is still a password), is hidden.
var plainParams = []string{"sentinel_username"}

// Redact returns raw with its secrets replaced by "xxxxx", whether raw
// parses or not. It hides the password of the userinfo (from the first ':'
// after the scheme to the LAST '@', as Parse reads it, so a password
// holding an unencoded '@', ':', '/', '?' or '#' is hidden whole; the user
// name stays), the value, up to the next '&', of every query parameter but
// sentinel_username (unknown ones included: their names stay), and, in a
// string with no '@', everything from a port that is not a number on
// ("redis://user:s3cret", whose '@' and host are missing, holds a password
// there). Where the
// readings disagree (an unencoded '@' in a query value), everything either
// one takes for a secret is hidden. Strings without secrets come back
// unchanged.
func Redact(raw string) string {
	scheme, rest := splitScheme(raw)
	if !hidePassword(rest, make([]bool, len(rest))) && !knownScheme(scheme) {
		// "user://pw@host" may be a bare cluster node whose password
		// starts with "//": read it without a scheme.
		scheme, rest = "", raw
	}
	hide := make([]bool, len(rest))
	hidePassword(rest, hide)
	hideParamValues(rest, hide)
	hideBadPorts(rest, hide)
	var b strings.Builder
	b.WriteString(scheme)
	for i := 0; i < len(rest); i++ {
		if !hide[i] {
			b.WriteByte(rest[i])
			continue
		}
		b.WriteString(Masked)
		for i+1 < len(rest) && hide[i+1] {
			i++
		}
	}
	return b.String()
}

// hidePassword marks the password of s (the part after any scheme): from
// the first ':' before the last '@' to that '@'. It reports whether there
// is one.
func hidePassword(s string, hide []bool) bool {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return false
	}
	c := strings.IndexByte(s[:at], ':')
	if c < 0 {
		return false
	}
	for i := c + 1; i < at; i++ {
		hide[i] = true
	}
	return true
}

// knownScheme reports whether scheme ("redis://", ...) is one Parse takes.
func knownScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "", "redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://":
		return true
	}
	return false
}

// hideParamValues marks the value of every "name=value" that follows a
// '?' or an '&', unless the name is one of plainParams. The value runs to
// the next '&' (or the end), so an unencoded '?', '#', '=' or '@' inside it
// is hidden too.
func hideParamValues(s string, hide []bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '?' && s[i] != '&' {
			continue
		}
		eq := strings.IndexAny(s[i+1:], "=&?")
		if eq < 0 || s[i+1+eq] != '=' || plainName(s[i+1:i+1+eq]) {
			continue
		}
		for j := i + 2 + eq; j < len(s) && s[j] != '&'; j++ {
			hide[j] = true
		}
	}
}

// plainName reports whether a query parameter name (percent-encoded or
// not) is one of plainParams.
func plainName(name string) bool {
	n := name
	if dec, err := url.QueryUnescape(name); err == nil {
		n = dec
	}
	return slices.Contains(plainParams, n)
}

// hideBadPorts marks, in a string with no '@', everything after the first
// port of the authority (up to the first '/', '?' or '#') that is not a
// number: with the '@' and the host missing, "user:s3cret" reads as host
// and port, and the password may run on past the authority.
func hideBadPorts(s string, hide []bool) {
	if strings.Contains(s, "@") {
		return
	}
	end := strings.IndexAny(s, "/?#")
	if end < 0 {
		end = len(s)
	}
	start := 0
	for _, h := range strings.Split(s[:end], ",") {
		if c := strings.LastIndexByte(h, ':'); c >= 0 && strings.LastIndexByte(h, ']') < c && strings.Trim(h[c+1:], "0123456789") != "" {
			for j := start + c + 1; j < len(s); j++ {
				hide[j] = true
			}
			return
		}
		start += len(h) + 1
	}
}

// splitScheme splits "scheme://rest" when raw starts with a well-formed
// scheme; otherwise (a bare host:port, or a string whose first "://" sits
// inside a password) the scheme is empty and rest is raw.
func splitScheme(raw string) (scheme, rest string) {
	i := strings.Index(raw, "://")
	if i <= 0 || !validScheme(raw[:i]) {
		return "", raw
	}
	return raw[:i+3], raw[i+3:]
}

// validScheme reports whether s is an RFC 3986 scheme: a letter, then
// letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}
