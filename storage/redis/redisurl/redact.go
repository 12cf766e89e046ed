package redisurl

import (
	"net/url"
	"strings"
)

// Masked replaces every secret Redact hides, as url.URL.Redacted does.
const Masked = "xxxxx"

// secretWords are the query parameter name fragments whose values Redact
// masks (case-insensitive, after percent-decoding the name).
var secretWords = []string{"pass", "secret", "token"}

// Redact returns raw with its secrets replaced by "xxxxx", whether raw
// parses or not. It hides the password of the userinfo (from the first ':'
// after the scheme to the LAST '@', as Parse reads it, so a password
// holding an unencoded '@', ':', '/', '?' or '#' is hidden whole; the user
// name stays) and the value, up to the next '&', of every query parameter
// whose name contains "pass", "secret" or "token". Where the two readings
// disagree (an unencoded '@' in a query value), everything either one takes
// for a secret is hidden. Strings without secrets come back unchanged.
func Redact(raw string) string {
	scheme, rest := splitScheme(raw)
	if !hidePassword(rest, make([]bool, len(rest))) && !knownScheme(scheme) {
		// "user://pw@host" may be a bare cluster node whose password
		// starts with "//": read it without a scheme.
		scheme, rest = "", raw
	}
	hide := make([]bool, len(rest))
	hidePassword(rest, hide)
	hideSecretParams(rest, hide)
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

// hideSecretParams marks the value of every "name=value" that follows a
// '?' or an '&' when the name is a secret's. The value runs to the next
// '&' (or the end), so an unencoded '?', '#', '=' or '@' inside it is
// hidden too.
func hideSecretParams(s string, hide []bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '?' && s[i] != '&' {
			continue
		}
		eq := strings.IndexAny(s[i+1:], "=&?")
		if eq < 0 || s[i+1+eq] != '=' || !secretName(s[i+1:i+1+eq]) {
			continue
		}
		for j := i + 2 + eq; j < len(s) && s[j] != '&'; j++ {
			hide[j] = true
		}
	}
}

// secretName reports whether a query parameter name (percent-encoded or
// not) names a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	if dec, err := url.QueryUnescape(name); err == nil {
		n = strings.ToLower(dec)
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
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
