package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ParseRawQuery reads a raw query string (the part after "?") as
// url.ParseQuery does, but fails where ParseQuery would leave a pair out:
// a ";" in it (Go no longer reads ";" as a separator, and drops the pair)
// or a malformed %-escape. r.URL.Query() ignores that error, so
// "?severity=P9;x" would answer every incident as if unfiltered. The error
// is a *ParamError naming the parameter of the first bad pair.
func ParseRawQuery(raw string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err == nil {
		return v, nil
	}
	for _, pair := range strings.Split(raw, "&") {
		if perr := badPair(pair); perr != nil {
			return nil, perr
		}
	}
	return nil, &ParamError{Param: raw, Msg: fmt.Sprintf("query string does not parse: %v", err)}
}

// badPair explains why url.ParseQuery leaves one key=value pair out, or
// returns nil when it does not.
func badPair(pair string) *ParamError {
	key, value, _ := strings.Cut(pair, "=")
	name, kerr := url.QueryUnescape(key)
	if kerr != nil {
		name = key
	}
	if strings.Contains(pair, ";") {
		return perr(name, `the query holds a ";" (%q): parameters are separated by "&" only, and a ";" inside a value is encoded as %%3B`, pair)
	}
	if _, verr := url.QueryUnescape(value); kerr != nil || verr != nil {
		return perr(name, `malformed %%-escape in %q: a "%%" inside a value is encoded as %%25`, pair)
	}
	return nil
}

// noParameters checks that a request to an endpoint that takes no query
// parameters (path) has none: an ignored parameter would let a client
// believe it did something.
func noParameters(raw, path string) error {
	v, err := ParseRawQuery(raw)
	if err != nil {
		return err
	}
	if len(v) == 0 {
		return nil
	}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	return perr(names[0], "unknown parameter: %s takes none", path)
}
