package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/llm-im/incidentd/config"
)

// NATSOptions are the client options [nats] asks for: the connection name,
// its one authentication method (nats.credentials_file, else
// nats.nkey_seed_file, else nats.user with nats.password, else
// nats.token), TLS (nats.tls_*: any of them turns TLS on, and the files
// are read again at each reconnection, so renewed certificates are picked
// up) and the pings that find a dead connection (nats.ping_interval,
// nats.max_pings_outstanding). The worker and incidentctl both connect
// with them, so a config file that lets the worker in lets the operator
// CLI in too; a caller adds its own options after them (a later nats.Name
// wins).
func NATSOptions(n config.NATSConfig) []nats.Option {
	opts := []nats.Option{nats.Name(n.Name)}
	switch {
	case n.CredentialsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredentialsFile))
	case n.NkeySeedFile != "":
		opts = append(opts, nkeySeed(n.NkeySeedFile))
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	}
	if n.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(n.TLSCAFile))
	}
	if n.TLSCertFile != "" || n.TLSKeyFile != "" {
		opts = append(opts, nats.ClientCert(n.TLSCertFile, n.TLSKeyFile))
	}
	if n.TLSServerName != "" {
		opts = append(opts, tlsServerName(n.TLSServerName))
	}
	if n.PingInterval.Duration > 0 {
		opts = append(opts, nats.PingInterval(n.PingInterval.Duration))
	}
	if n.MaxPingsOutstanding > 0 {
		opts = append(opts, nats.MaxPingsOutstanding(n.MaxPingsOutstanding))
	}
	return opts
}

// nkeySeed logs in with the user nkey whose seed is in path; the file is
// read when the option is applied (by nats.Connect, which returns its
// error) and at each signature, and the seed is not kept in memory.
func nkeySeed(path string) nats.Option {
	return func(o *nats.Options) error {
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return fmt.Errorf("nats.nkey_seed_file %s: %w", path, err)
		}
		return opt(o)
	}
}

// tlsServerName checks name in the servers' certificates instead of the
// URL's host, and turns TLS on.
func tlsServerName(name string) nats.Option {
	return func(o *nats.Options) error {
		if o.TLSConfig == nil {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.TLSConfig.ServerName = name
		o.Secure = true
		return nil
	}
}

// NATSConnectError describes a failed connection to url without its
// secrets: "nats connect URL (FROM): ERR", with the URL's passwords and
// tokens masked as in the logged configuration, also where ERR quotes the
// URL; when the URL does not parse, ERR is net/url's reason without the
// pieces of the URL it quotes. from says where the URL came from
// (NATS_URL, nats.url in FILE, --nats-url) and may be empty.
func NATSConnectError(url, from string, err error) error {
	return &natsConnectError{url: url, from: from, err: err}
}

type natsConnectError struct {
	url, from string
	err       error
}

func (e *natsConnectError) Error() string {
	s := "nats connect " + config.RedactNATSURL(e.url)
	if e.from != "" {
		s += " (" + e.from + ")"
	}
	var ue *url.Error
	if errors.As(e.err, &ue) {
		// net/url quotes the string it could not parse, or a piece of it
		// ("invalid port \":s3cret\" after host"), which may be any
		// part of a password: keep its reason, drop what it quotes.
		reason := quotedRE.ReplaceAllString(ue.Err.Error(), "")
		if strings.Contains(e.url, "@") || strings.Contains(reason, "port") {
			reason += " (percent-encode '@', ':', '/', '?', '#' and '%' in a user name or password)"
		}
		return s + ": not a valid URL: " + reason
	}
	msg := e.err.Error()
	for _, u := range strings.Split(e.url, ",") {
		u = strings.TrimSpace(u)
		if masked := config.RedactNATSURL(u); u != "" && masked != u {
			msg = strings.ReplaceAll(msg, u, masked)
		}
	}
	return s + ": " + msg
}

func (e *natsConnectError) Unwrap() error { return e.err }

// quotedRE matches a quoted piece of an error text and the space before it.
var quotedRE = regexp.MustCompile(` ?"(?:[^"\\]|\\.)*"`)
