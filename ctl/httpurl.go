package ctl

import (
	"fmt"
	"net/url"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// userAgent is the User-Agent of incidentctl's requests to a worker
// ("incidentctl/v1.2.3"), which the worker logs with an operator's state
// change.
func userAgent() string { return "incidentctl/" + app.Version }

// newAPIClient is a client of the worker's API at base that says it is
// incidentctl.
func newAPIClient(base string) *api.Client {
	c := api.NewClient(base, nil)
	c.UserAgent = userAgent()
	return c
}

// checkHTTPURL returns a usage error naming flag when raw is not an
// http(s) URL with a host. The error shows raw with its userinfo masked and
// says what is wrong in its own words: net/url's errors quote the pieces
// they could not parse, which can be part of a password.
func checkHTTPURL(flag, raw string) error {
	u, err := url.Parse(raw)
	why := ""
	switch {
	case err != nil:
		why = "it does not parse as a URL (unescaped characters in the user or password must be %-escaped)"
	case u.Scheme != "http" && u.Scheme != "https":
		why = "the scheme must be http or https"
	case u.Host == "":
		why = "it names no host"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s %s: %s", errUsage, flag, config.RedactNATSURL(raw), why)
}
