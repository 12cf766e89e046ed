package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// target is where and how to connect, parsed from a URL (or a list of
// cluster seed nodes) with every credential separated out.
type target struct {
	Addrs            []string // host:port; sentinels for a Sentinel URL
	TLS              bool
	Sentinel         bool
	MasterName       string
	DB               int
	Username         string
	Password         string
	SentinelUsername string
	SentinelPassword string
}

// Default ports when a URL host has none.
const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
)

// redacted replaces passwords in a connection string that may not even
// parse: the part between the first ':' of the userinfo and the '@', and
// the value of every query parameter whose name contains "password".
func redacted(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	query := ""
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user := rest[:at]
		if c := strings.IndexByte(user, ':'); c >= 0 {
			user = user[:c] + ":xxxxx"
		}
		rest = user + rest[at:]
	}
	if query != "" {
		parts := strings.Split(query[1:], "&")
		for i, kv := range parts {
			k, _, ok := strings.Cut(kv, "=")
			if ok && strings.Contains(strings.ToLower(k), "password") {
				parts[i] = k + "=xxxxx"
			}
		}
		query = "?" + strings.Join(parts, "&")
	}
	return scheme + rest + query
}

// parseURL parses every URL form the reference guide shows:
//
//	redis://[[user]:password@]host[:port][/db]
//	rediss://...                                    (TLS)
//	redis+sentinel://[[user]:password@]s1[:port],s2[:port]/master[/db]
//	rediss+sentinel://...                           (TLS to sentinels and master)
//
// A Sentinel URL's userinfo is the master's credentials; the sentinels'
// come from the sentinel_username and sentinel_password query parameters.
// Errors quote the URL with its passwords masked.
func parseURL(raw string) (target, error) {
	t, err := parseURLInner(raw)
	if err != nil {
		return target{}, fmt.Errorf("redis url %q: %w", redacted(raw), err)
	}
	return t, nil
}

func parseURLInner(raw string) (target, error) {
	var t target
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return t, errors.New("missing scheme (want redis://, rediss:// or redis+sentinel://)")
	}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		t.TLS = true
	case "redis+sentinel":
		t.Sentinel = true
	case "rediss+sentinel":
		t.Sentinel, t.TLS = true, true
	default:
		return t, fmt.Errorf("unknown scheme %q (want redis, rediss, redis+sentinel or rediss+sentinel)", scheme)
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if err := t.setUserinfo(authority[:at]); err != nil {
			return t, err
		}
		authority = authority[at+1:]
	}
	port := defaultPort
	if t.Sentinel {
		port = defaultSentinelPort
	}
	for _, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, port)
		if err != nil {
			return t, err
		}
		t.Addrs = append(t.Addrs, addr)
	}
	if !t.Sentinel && len(t.Addrs) != 1 {
		return t, errors.New("a redis:// URL names exactly one host (use redis+sentinel:// or redis_cluster_nodes for several)")
	}
	if err := t.setPath(path); err != nil {
		return t, err
	}
	return t, t.setQuery(rawQuery)
}

func (t *target) setUserinfo(info string) error {
	user, pass, hasPass := strings.Cut(info, ":")
	var err error
	if t.Username, err = url.PathUnescape(user); err != nil {
		return errors.New("bad percent-encoding in the user name")
	}
	if hasPass {
		if t.Password, err = url.PathUnescape(pass); err != nil {
			return errors.New("bad percent-encoding in the password")
		}
	}
	return nil
}

func hostPort(h, port string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	if strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("/\\@?#%", r) }) {
		return "", fmt.Errorf("bad host %q", h)
	}
	if host, p, err := net.SplitHostPort(h); err == nil {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil || host == "" {
			return "", fmt.Errorf("bad host:port %q", h)
		}
		return h, nil
	}
	if strings.ContainsAny(h, ":[]") && !strings.HasPrefix(h, "[") {
		return "", fmt.Errorf("bad host %q", h)
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), port), nil
}

func (t *target) setPath(path string) error {
	path = strings.TrimSuffix(path, "/")
	if t.Sentinel {
		name, db, _ := strings.Cut(path, "/")
		if name == "" {
			return errors.New("a Sentinel URL needs the master name: redis+sentinel://s1:26379,s2:26379/mymaster[/db]")
		}
		t.MasterName = name
		path = db
	}
	if path == "" {
		return nil
	}
	db, err := strconv.Atoi(path)
	if err != nil || db < 0 {
		return fmt.Errorf("bad database number %q", path)
	}
	t.DB = db
	return nil
}

func (t *target) setQuery(rawQuery string) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return errors.New("bad query string")
	}
	for k, v := range q {
		switch {
		case k == "sentinel_username" && t.Sentinel:
			t.SentinelUsername = v[len(v)-1]
		case k == "sentinel_password" && t.Sentinel:
			t.SentinelPassword = v[len(v)-1]
		default:
			return fmt.Errorf("unknown query parameter %q", k)
		}
	}
	return nil
}

// parseClusterNodes parses redis_cluster_nodes: "redis://host:port",
// "rediss://host:port" or bare "host:port" seeds. Credentials may sit in any
// one of them; TLS must be all or none.
func parseClusterNodes(nodes []string) (target, error) {
	var t target
	for i, n := range nodes {
		raw := n
		if !strings.Contains(n, "://") {
			raw = "redis://" + n
		}
		nt, err := parseURL(raw)
		if err != nil {
			return target{}, err
		}
		if nt.Sentinel || nt.DB != 0 {
			return target{}, fmt.Errorf("cluster node %q: Sentinel URLs and database numbers are not allowed in a cluster", redacted(n))
		}
		if i > 0 && nt.TLS != t.TLS {
			return target{}, errors.New("cluster nodes mix rediss:// and redis://")
		}
		t.TLS = nt.TLS
		if nt.Username != "" || nt.Password != "" {
			t.Username, t.Password = nt.Username, nt.Password
		}
		t.Addrs = append(t.Addrs, nt.Addrs...)
	}
	if len(t.Addrs) == 0 {
		return target{}, errors.New("redis cluster: no seed nodes")
	}
	return t, nil
}
