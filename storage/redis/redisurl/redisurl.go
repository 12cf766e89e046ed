// Package redisurl is the one grammar of incidentd's Redis connection
// strings: it parses state.redis_url and the state.redis_cluster_nodes
// entries into addresses and credentials, and redacts their secrets. The
// configuration's validation and the Redis store both use it, so a URL the
// configuration accepts is one the store can open. It imports nothing of
// the module and dials nothing.
package redisurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every *Error: the string is not a Redis URL.
var ErrInvalid = errors.New("redisurl: invalid Redis URL")

// MaxDB is the highest database number a URL may name: Redis has 16
// databases (0..15) unless its "databases" setting says otherwise, and a
// higher number would only fail at the first connection.
const MaxDB = 15

// Default ports when a host has none.
const (
	DefaultPort         = "6379"
	DefaultSentinelPort = "26379"
)

// URL is a parsed connection string with every credential separated out.
type URL struct {
	// Addrs are host:port addresses: the server, the sentinels of a
	// Sentinel URL, or the seeds of a cluster.
	Addrs []string
	// TLS is set by rediss:// and rediss+sentinel://.
	TLS bool
	// Sentinel is set by redis+sentinel:// and rediss+sentinel://.
	Sentinel bool
	// MasterName is the Sentinel master's name.
	MasterName string
	// DB is the database number (0..MaxDB).
	DB int
	// Username and Password are the data server's credentials (the
	// userinfo, percent-decoded).
	Username, Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (the sentinel_username and sentinel_password query parameters).
	SentinelUsername, SentinelPassword string
}

// Error is a string that is not a valid Redis URL. It never holds a
// secret: URL is the string redacted, and Reason quotes no piece of it.
type Error struct {
	// URL is the offending string, passed through Redact.
	URL string
	// Reason says what is wrong, e.g. "database number must be 0 to 15".
	Reason string
}

// Error returns `redis url "<redacted>": <reason>`.
func (e *Error) Error() string { return fmt.Sprintf("redis url %q: %s", e.URL, e.Reason) }

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

func fail(raw, reason string) *Error { return &Error{URL: Redact(raw), Reason: reason} }

// Parse parses every URL form the reference guide shows:
//
//	redis://[[user]:password@]host[:port][/db]
//	rediss://...                                    (TLS)
//	redis+sentinel://[[user]:password@]s1[:port],s2[:port]/master[/db]
//	rediss+sentinel://...                           (TLS to sentinels and master)
//
// The userinfo ends at the LAST '@', so a password holding an unencoded
// '@', ':', '/', '?' or '#' still parses (a '%' must start a percent
// escape). A Sentinel URL's userinfo is the master's credentials; the
// sentinels' come from the sentinel_username and sentinel_password query
// parameters, and any other parameter is an error. Errors are *Error.
func Parse(raw string) (URL, error) {
	u, reason := parse(raw)
	if reason != "" {
		return URL{}, fail(raw, reason)
	}
	return u, nil
}

func parse(raw string) (URL, string) {
	var u URL
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !validScheme(scheme) {
		return u, "missing scheme: want redis://, rediss://, redis+sentinel:// or rediss+sentinel://"
	}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		u.TLS = true
	case "redis+sentinel":
		u.Sentinel = true
	case "rediss+sentinel":
		u.Sentinel, u.TLS = true, true
	default:
		return u, fmt.Sprintf("unsupported scheme %q: want redis://, rediss://, redis+sentinel:// or rediss+sentinel://", scheme)
	}
	// A '?' before the last '@' leaves two readings: a password holding
	// a '?', or a query value holding an '@'. The parameter names read
	// after the '@' may then be a piece of a secret, and are not quoted.
	quoteNames := true
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if reason := u.setUserinfo(rest[:at]); reason != "" {
			return u, reason
		}
		quoteNames = !strings.Contains(rest[:at], "?")
		rest = rest[at+1:]
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	port := DefaultPort
	if u.Sentinel {
		port = DefaultSentinelPort
	}
	hosts := strings.Split(authority, ",")
	if !u.Sentinel && len(hosts) != 1 {
		return u, "a redis:// URL names exactly one host (use redis+sentinel:// or redis_cluster_nodes for several)"
	}
	for i, h := range hosts {
		addr, reason := hostPort(h, port)
		if reason != "" {
			if len(hosts) > 1 {
				reason = fmt.Sprintf("host %d of %d: %s", i+1, len(hosts), reason)
			}
			return u, reason
		}
		u.Addrs = append(u.Addrs, addr)
	}
	if reason := u.setPath(path); reason != "" {
		return u, reason
	}
	return u, u.setQuery(rawQuery, quoteNames)
}

// knownParams are the query parameters a URL may carry.
var knownParams = []string{"sentinel_username", "sentinel_password"}

func (u *URL) setUserinfo(info string) string {
	if q := strings.IndexByte(info, '?'); q >= 0 {
		for kv := range strings.SplitSeq(info[q+1:], "&") {
			k, _, _ := strings.Cut(kv, "=")
			if dec, err := url.PathUnescape(k); err == nil && isKnownParam(dec) {
				return "an '@' in the query string must be percent-encoded as %40"
			}
		}
	}
	user, pass, hasPass := strings.Cut(info, ":")
	var err error
	if u.Username, err = url.PathUnescape(user); err != nil {
		return "bad percent-encoding in the user name (write '%' as %25)"
	}
	if hasPass {
		if u.Password, err = url.PathUnescape(pass); err != nil {
			return "bad percent-encoding in the password (write '%' as %25)"
		}
	}
	return ""
}

func isKnownParam(k string) bool {
	for _, p := range knownParams {
		if k == p {
			return true
		}
	}
	return false
}

// hostPort checks one host[:port] and adds the default port. Its reasons
// quote nothing: the URL the error shows is redacted, a piece of it would
// not be.
func hostPort(h, port string) (string, string) {
	if h == "" {
		return "", "empty host"
	}
	if strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("/\\@?#%", r) }) {
		return "", "the host holds a space, a control character or one of / \\ @ ? # %"
	}
	if host, p, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return "", "empty host before the port"
		}
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", "the port must be a number from 1 to 65535"
		}
		if strings.HasPrefix(h, "[") && !isIPv6(host) {
			return "", "brackets hold an IPv6 address: [::1]:6379"
		}
		return h, ""
	}
	if strings.ContainsAny(h, ":[]") && !(strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") && strings.Count(h, "[") == 1 && strings.Count(h, "]") == 1) {
		return "", "bad host:port (an IPv6 address goes in brackets: [::1]:6379)"
	}
	if strings.HasPrefix(h, "[") && !isIPv6(strings.Trim(h, "[]")) {
		return "", "brackets hold an IPv6 address: [::1]:6379"
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), port), ""
}

func (u *URL) setPath(path string) string {
	path = strings.TrimSuffix(path, "/")
	if u.Sentinel {
		name, db, _ := strings.Cut(path, "/")
		if name == "" {
			return "a Sentinel URL needs the master name: redis+sentinel://s1:26379,s2:26379/mymaster[/db]"
		}
		u.MasterName = name
		path = db
	}
	if path == "" {
		return ""
	}
	db, err := strconv.Atoi(path)
	if err != nil || db < 0 || db > MaxDB || strings.HasPrefix(path, "+") {
		return fmt.Sprintf("the database number must be 0 to %d", MaxDB)
	}
	u.DB = db
	return ""
}

// setQuery reads the query parameters. An unknown one is an error that
// names it (never its value, which may be a misspelt secret's), unless
// quoteNames is false.
func (u *URL) setQuery(rawQuery string, quoteNames bool) string {
	if rawQuery == "" {
		return ""
	}
	for kv := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		key, err1 := url.PathUnescape(k)
		val, err2 := url.PathUnescape(v)
		switch {
		case kv == "":
			continue
		case err1 != nil || err2 != nil:
			return "bad percent-encoding in the query string (write '%' as %25)"
		case !isKnownParam(key) && !u.Sentinel:
			return u.noParams(key, quoteNames)
		case !isKnownParam(key) && !quoteNames:
			return fmt.Sprintf("unknown query parameter (known: %s; percent-encode an '@' in a query value as %%40)", strings.Join(knownParams, ", "))
		case !isKnownParam(key):
			return fmt.Sprintf("unknown query parameter %q (known: %s)", key, strings.Join(knownParams, ", "))
		case !u.Sentinel:
			return fmt.Sprintf("query parameter %q is only for redis+sentinel:// URLs", key)
		case key == "sentinel_username":
			u.SentinelUsername = val
		default:
			u.SentinelPassword = val
		}
	}
	return ""
}

// noParams is the reason for a query parameter on a URL that takes none
// (redis:// or rediss://), naming key when quoteNames is true.
func (u *URL) noParams(key string, quoteNames bool) string {
	scheme, hint := "redis://", ""
	if u.TLS {
		scheme, hint = "rediss://", "; its TLS settings are the state.redis.tls_* keys"
	}
	if !quoteNames {
		return fmt.Sprintf("unknown query parameter (a %s URL takes none%s)", scheme, hint)
	}
	return fmt.Sprintf("unknown query parameter %q (a %s URL takes none%s)", key, scheme, hint)
}

// ParseClusterNode parses one state.redis_cluster_nodes entry:
// "redis://host:port", "rediss://host:port" or a bare "host:port", each
// with optional credentials. Sentinel URLs and database numbers other than
// 0 are errors. Errors are *Error.
func ParseClusterNode(n string) (URL, error) {
	raw := n
	scheme, rest := splitScheme(n)
	bare := scheme == ""
	if bare {
		raw = "redis://" + n
	}
	u, reason := parse(raw)
	switch {
	case !bare && !strings.EqualFold(scheme, "redis://") && !strings.EqualFold(scheme, "rediss://"):
		reason = fmt.Sprintf("unsupported scheme %q: want redis://host:port, rediss://host:port or a bare host:port", strings.TrimSuffix(scheme, "://"))
	case bare && reason == "" && !hasPort(rest):
		reason = `want "redis://host:port", "rediss://host:port" or "host:port" (a bare node needs its port)`
	case reason != "":
	case u.Sentinel:
		reason = "a cluster node is redis://host:port, rediss://host:port or host:port, not a Sentinel URL"
	case u.DB != 0:
		reason = "a cluster has no database numbers (only database 0)"
	}
	if reason != "" {
		return URL{}, fail(n, reason)
	}
	return u, nil
}

// hasPort reports whether the host of a bare node (after any userinfo)
// ends in ":port".
func hasPort(n string) bool {
	if at := strings.LastIndexByte(n, '@'); at >= 0 {
		n = n[at+1:]
	}
	_, _, err := net.SplitHostPort(n)
	return err == nil
}

// ParseClusterNodes parses the seed nodes of a Redis Cluster into one URL
// with every node's address. One set of credentials serves every node: they
// may sit in any node, or in several alike, but two nodes with different
// ones are an error (ClusterCredentialConflict); TLS must be all or none.
func ParseClusterNodes(nodes []string) (URL, error) {
	var c URL
	parsed := make([]URL, 0, len(nodes))
	for i, n := range nodes {
		u, err := ParseClusterNode(n)
		if err != nil {
			return URL{}, err
		}
		if i > 0 && u.TLS != c.TLS {
			return URL{}, fmt.Errorf("%w: cluster nodes mix rediss:// and redis://", ErrInvalid)
		}
		c.TLS = u.TLS
		if (u.Username != "" || u.Password != "") && c.Username == "" && c.Password == "" {
			c.Username, c.Password = u.Username, u.Password
		}
		c.Addrs = append(c.Addrs, u.Addrs...)
		parsed = append(parsed, u)
	}
	if len(c.Addrs) == 0 {
		return URL{}, fmt.Errorf("%w: no cluster seed nodes", ErrInvalid)
	}
	if reason := ClusterCredentialConflict(parsed); reason != "" {
		return URL{}, fmt.Errorf("%w: %s", ErrInvalid, reason)
	}
	return c, nil
}

// ClusterCredentialConflict says which credentials two parsed cluster nodes
// disagree on, "" when they agree: every node that carries a user name or
// a password must carry the same pair (the user "default" is the same as
// none), since the client authenticates to every node of the cluster with
// one pair. Nodes without credentials agree with any. The reason names the
// nodes (1-based) and the fields, never their values.
func ClusterCredentialConflict(nodes []URL) string {
	first := -1
	for i, u := range nodes {
		if u.Username == "" && u.Password == "" {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		f := nodes[first]
		var fields []string
		if userOf(u) != userOf(f) {
			fields = append(fields, "user names")
		}
		if u.Password != f.Password {
			fields = append(fields, "passwords")
		}
		if len(fields) > 0 {
			return fmt.Sprintf("cluster nodes %d and %d give different %s; the client authenticates to every node with one user and password: "+
				"give them in one node or the same in every node (or only in [state.redis] username and password)", first+1, i+1, strings.Join(fields, " and "))
		}
	}
	return ""
}

// userOf is the ACL user a node's credentials log in as: "default" for
// none.
func userOf(u URL) string {
	if u.Username == "" {
		return "default"
	}
	return u.Username
}

// isIPv6 reports whether s is an IPv6 address: brackets hold nothing else
// ("[]" would dial the local host, "[name]" is no address).
func isIPv6(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() == nil
}
