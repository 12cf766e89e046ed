package config

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// redactedSecret replaces secrets, as url.URL.Redacted does for passwords.
const redactedSecret = "xxxxx"

// Redacted returns a deep copy of c that is safe to log: state.redis.password,
// state.redis.sentinel_password, nats.password and nats.token become
// "xxxxx" when set, and so do the secrets inside state.redis_url and every
// state.redis_cluster_nodes entry (the userinfo's password and secret query
// parameters such as sentinel_password, by redisurl.Redact, the rule the
// Redis store's errors follow) and the passwords inside nats.url (where a
// user without a password is a token and is masked too). Unset secrets stay
// empty so the log still shows that they are unset.
func (c Config) Redacted() Config {
	r := c
	r.State.RedisClusterNodes = slices.Clone(c.State.RedisClusterNodes)
	r.Consumer.Subjects = slices.Clone(c.Consumer.Subjects)
	r.Dedupe.Fields = slices.Clone(c.Dedupe.Fields)
	if c.Dedupe.SourceFields != nil {
		r.Dedupe.SourceFields = make(map[string][]string, len(c.Dedupe.SourceFields))
		for k, v := range maps.All(c.Dedupe.SourceFields) {
			r.Dedupe.SourceFields[k] = slices.Clone(v)
		}
	}
	r.Warnings = slices.Clone(c.Warnings)

	r.State.RedisURL = redisurl.Redact(c.State.RedisURL)
	for i, n := range r.State.RedisClusterNodes {
		r.State.RedisClusterNodes[i] = redisurl.Redact(n)
	}
	r.State.Redis.Password = mask(c.State.Redis.Password)
	r.State.Redis.SentinelPassword = mask(c.State.Redis.SentinelPassword)

	r.NATS.URL = RedactNATSURL(c.NATS.URL)
	r.NATS.Password = mask(c.NATS.Password)
	r.NATS.Token = mask(c.NATS.Token)
	return r
}

// RedactNATSURL masks the secrets of a nats.url value, one or more
// comma-separated URLs: each password becomes "xxxxx", and so does a user
// without a password (a NATS token) and, in a URL with no '@', a port that
// is not a number and all after it (where "nats://alice:s3cret", its '@'
// and host missing, holds the password). Anything else is kept, so the result still says
// which servers are meant.
func RedactNATSURL(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(s, ":") {
		return s
	}
	urls := strings.Split(s, ",")
	for i, u := range urls {
		// The white space around a URL of the list (", nats://…") is
		// kept, and not taken for part of a scheme or userinfo.
		t := strings.TrimSpace(u)
		lead := u[:strings.Index(u, t)]
		urls[i] = lead + redactNATSURL(t) + u[len(lead)+len(t):]
	}
	return strings.Join(urls, ",")
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return redactedSecret
}

// userinfoRE finds the userinfo of a URL-like string: everything between
// "scheme://" (optional) and the last '@', so a password holding '/', '#',
// '?' or '@' unescaped is still covered.
var userinfoRE = regexp.MustCompile(`^((?:[A-Za-z][A-Za-z0-9+.\-]*://)?)(.*)@`)

// redactNATSURL masks the password of a NATS URL with url.URL.Redacted
// semantics, and a user without a password too (a NATS token). When
// net/url cannot parse the string (unescaped special characters in a
// password) or parses it in a way that leaves an '@' outside the userinfo,
// it falls back to masking the userinfo by pattern.
func redactNATSURL(s string) string {
	if !strings.Contains(s, "@") {
		return maskBadPort(s)
	}
	if u, err := url.Parse(s); err == nil && u.User != nil && !strings.Contains(u.Host+u.Path+u.RawQuery+u.Fragment, "@") {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
		if u.User.Username() != "" {
			u.User = url.User(redactedSecret)
			return u.String()
		}
		return s
	}
	m := userinfoRE.FindStringSubmatchIndex(s)
	if m == nil {
		return s
	}
	prefix, userinfo, rest := s[:m[3]], s[m[4]:m[5]], s[m[5]:]
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		return prefix + user + ":" + redactedSecret + rest
	}
	if userinfo != "" {
		return prefix + redactedSecret + rest
	}
	return s
}

// maskBadPort masks the port of a URL without userinfo, and all after it,
// when it is not a number: a password whose '@' and host are missing reads
// as one, and may run on past it.
func maskBadPort(s string) string {
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		rest = s[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host := rest[:end]
	c := strings.LastIndexByte(host, ':')
	if c < 0 || strings.LastIndexByte(host, ']') > c || strings.Trim(host[c+1:], "0123456789") == "" {
		return s
	}
	return s[:len(s)-len(rest)+c+1] + redactedSecret
}
