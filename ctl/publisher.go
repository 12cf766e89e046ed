package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// DefaultNATSURL is used when neither --nats-url, NATS_URL nor the [nats]
// url of --config is set.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// DefaultSubject is the publish subject template; {source} is replaced by
// the event's source (made subject-safe).
const DefaultSubject = "incidents.events.{source}"

// ackTimeout is how long one publish waits for its JetStream ack before it
// counts as failed.
const ackTimeout = 30 * time.Second

// interruptGrace is how long a publish run stopped by a signal still waits
// for the acks outstanding; the rest count as failed (without the limit, a
// NATS server gone with acks outstanding kept publish from exiting).
const interruptGrace = 5 * time.Second

// errInterrupted is the failure of a publish whose ack was not waited for
// because the run was stopped.
var errInterrupted = errors.New("stopped before JetStream acked")

// errNoStream stops a publish run whose subject no stream listens on.
var errNoStream = errors.New("no stream")

// publisher publishes asynchronously with a bounded number of outstanding
// acks and counts the outcomes.
type publisher struct {
	js      jetstream.JetStream
	futures chan jetstream.PubAckFuture
	// slots holds a token per message from its publish until its fate is
	// settled: acked, or failed for good. A message sent again keeps its
	// token, so with maxPending 1 the next one waits for its retries and
	// events reach the stream in the order they were published (the
	// JetStream context's own pending count drops when an ack fails,
	// before the message is sent again).
	slots    chan struct{}
	done     chan struct{}
	sent     atomic.Int64
	acked    atomic.Int64
	dups     atomic.Int64
	failed   atomic.Int64
	resolved atomic.Int64 // acks the collector saw succeed or fail
	// retried counts messages sent again after their publish or ack was
	// lost with the connection or the stream's leader (see republish.go);
	// retryFor bounds how
	// long failures in a row may last, from outageSince (unix ns, 0 when
	// the last ack succeeded).
	retried     atomic.Int64
	retryFor    time.Duration
	outageSince atomic.Int64
	errOnce     sync.Once
	firstErr    error
	// noStream holds the subjects JetStream answered "no response from
	// stream" for and, asked, that no stream listens there (streamGone):
	// every later publish on one of them would fail the same way, so it
	// fails at once. hasStream holds those it named a stream for: "no
	// response from stream" there means the stream is electing a leader.
	noStream, hasStream sync.Map
}

// newPublisher starts the ack collector; maxPending bounds the acks in
// flight, and a message lost with the connection to NATS is sent again for
// up to retryFor (0: never). Once ctx ends the collector waits
// interruptGrace more for the acks outstanding, then stops: wait counts
// the rest as failed.
func newPublisher(ctx context.Context, nc *nats.Conn, maxPending int, retryFor time.Duration) (*publisher, error) {
	return newPublisherAckTimeout(ctx, nc, maxPending, retryFor, ackTimeout)
}

// newPublisherAckTimeout is newPublisher with each publish waiting ackWait
// for its ack (tests shorten ackTimeout).
func newPublisherAckTimeout(ctx context.Context, nc *nats.Conn, maxPending int, retryFor, ackWait time.Duration) (*publisher, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending), jetstream.WithPublishAsyncTimeout(ackWait))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &publisher{js: js, futures: make(chan jetstream.PubAckFuture, 2*maxPending), slots: make(chan struct{}, maxPending),
		done: make(chan struct{}), retryFor: retryFor}
	go p.collect(ctx)
	return p, nil
}

func (p *publisher) collect(ctx context.Context) {
	defer close(p.done)
	stopped := ctx.Done()
	var giveUp <-chan time.Time
	for f := range p.futures {
		var st retryState
		for waiting := true; waiting; {
			select {
			case ack := <-f.Ok():
				p.ackSucceeded()
				p.acked.Add(1)
				if ack.Duplicate {
					p.dups.Add(1)
				}
				waiting = false
			case err := <-f.Err():
				again, err := p.resend(ctx, f.Msg(), err, &st)
				if again != nil {
					f = again
					continue
				}
				if isNoStream(err) && !p.streamGone(ctx, f.Msg().Subject) {
					err = fmt.Errorf("stream unavailable (electing a leader?): %w", err)
				}
				p.fail(err)
				waiting = false
			case <-stopped:
				stopped, giveUp = nil, time.After(interruptGrace)
			case <-giveUp:
				return
			}
		}
		p.resolved.Add(1)
		<-p.slots
	}
}

func (p *publisher) fail(err error) {
	p.failed.Add(1)
	p.errOnce.Do(func() { p.firstErr = err })
}

// publish sends one message; msgID sets Nats-Msg-Id when not empty. It
// blocks while maxPending acks are outstanding.
func (p *publisher) publish(ctx context.Context, subject, msgID string, data []byte) error {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	opts = append(opts, jetstream.WithStallWait(time.Second))
	if _, none := p.noStream.Load(subject); none {
		return noStreamError(subject)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done: // the collector gave up (the run was stopped): nothing more is sent
		if err := ctx.Err(); err != nil {
			return err
		}
		return errInterrupted
	}
	for {
		f, err := p.js.PublishAsync(subject, data, opts...)
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			if ctx.Err() != nil {
				<-p.slots
				return ctx.Err()
			}
			continue
		}
		if err != nil && p.mayRetry(ctx, err, subject, msgID) && p.awaitConnection(ctx) {
			continue
		}
		if err != nil {
			<-p.slots
			p.fail(err)
			return fmt.Errorf("publish %s: %w", subject, err)
		}
		p.sent.Add(1)
		select {
		case p.futures <- f:
		case <-p.done: // the collector gave up: wait counts it
		}
		return nil
	}
}

// lineError names the NDJSON line (lineNo, size bytes) whose publish
// failed with err; for a line over the server's max_payload it gives both
// sizes, since the NATS error names neither.
func (p *publisher) lineError(lineNo, size int, err error) error {
	if errors.Is(err, nats.ErrMaxPayload) {
		limit := p.js.Conn().MaxPayload()
		return fmt.Errorf("line %d: %d bytes, over the NATS server's max_payload of %d bytes (publishing stopped there; the summary counts the lines before it; "+
			"shorten or split that event, or raise max_payload; the worker also refuses events over consumer.max_event_bytes, which --validate checks first): %w",
			lineNo, size, limit, err)
	}
	return fmt.Errorf("line %d: %w", lineNo, err)
}

// wait waits for every outstanding ack (each fails after ackTimeout; once
// the run's ctx ended, interruptGrace at most) and stops the collector; the
// acks not waited for count as failed. The publisher cannot be used
// afterwards.
func (p *publisher) wait() publishStats {
	close(p.futures)
	<-p.done
	if rest := p.sent.Load() - p.resolved.Load(); rest > 0 {
		p.failed.Add(rest)
		p.errOnce.Do(func() { p.firstErr = errInterrupted })
	}
	return p.stats()
}

// publishStats counts publish outcomes.
type publishStats struct {
	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	Duplicates int64 `json:"duplicates_dropped_by_jetstream"`
	Failed     int64 `json:"failed"`
	// Retried counts messages sent again after their publish or ack was
	// lost with the connection to NATS or the stream's leader.
	Retried int64 `json:"retried"`
}

func (p *publisher) stats() publishStats {
	return publishStats{Sent: p.sent.Load(), Acked: p.acked.Load(), Duplicates: p.dups.Load(), Failed: p.failed.Load(), Retried: p.retried.Load()}
}

// err is nil when every publish was acked, or when the only failure is
// the one stopped already reported (a line's publish that failed at once).
func (p *publisher) err(stopped error) error {
	s := p.stats()
	if s.Failed == 0 && s.Acked == s.Sent {
		return nil
	}
	if s.Failed == 1 && s.Acked == s.Sent && stopped != nil && errors.Is(stopped, p.firstErr) {
		return nil
	}
	noun := "publishes"
	if s.Failed == 1 {
		noun = "publish"
	}
	counts := fmt.Sprintf("%d %s failed, %d sent and not acked", s.Failed, noun, s.Sent-s.Acked)
	var none []string
	p.noStream.Range(func(k, _ any) bool {
		none = append(none, k.(string))
		return true
	})
	if len(none) == 0 {
		return fmt.Errorf("%s (first error: %v)", counts, p.firstErr)
	}
	// The subjects are the cause: they lead, in the words publish stops a
	// run with (noStreamError); the first error is kept when it is another.
	slices.Sort(none)
	err := fmt.Errorf("%w; %s", noStreamError(strings.Join(none, ", ")), counts)
	if !isNoStream(p.firstErr) {
		err = fmt.Errorf("%w (first error: %v)", err, p.firstErr)
	}
	return err
}

// noStreamError says that no stream listens on subjects.
func noStreamError(subjects string) error {
	return fmt.Errorf("publish: %w: no JetStream stream listens on %s (check --subject and the stream's subjects, or run incidentctl setup)", errNoStream, subjects)
}

// isNoStream reports whether a publish's ack failed because no stream
// listens on its subject.
func isNoStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// subjectFor fills the {source} placeholder of tmpl with a subject-safe
// token.
// checkSubjectTemplate refuses a --subject no event could be published on:
// an empty token, a wildcard, or a placeholder other than {source}.
func checkSubjectTemplate(tmpl string) error {
	if tmpl == "" {
		return fmt.Errorf("%w: --subject is empty", errUsage)
	}
	for _, tok := range strings.Split(tmpl, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%w: --subject %q has an empty token", errUsage, tmpl)
		case tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t"):
			return fmt.Errorf("%w: --subject %q: a subject to publish on has no wildcards or spaces", errUsage, tmpl)
		case strings.ContainsAny(strings.ReplaceAll(tok, "{source}", ""), "{}"):
			return fmt.Errorf("%w: --subject %q: {source} is the only placeholder", errUsage, tmpl)
		}
	}
	return nil
}

func subjectFor(tmpl, source string) string {
	if !strings.Contains(tmpl, "{source}") {
		return tmpl
	}
	return strings.ReplaceAll(tmpl, "{source}", subjectToken(source))
}

func subjectToken(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// natsTarget is the NATS server a command connects to, where its URL came
// from (for messages) and the [nats] credentials it logs in with.
type natsTarget struct {
	url  string
	from string
	auth config.NATSConfig
}

// resolveNATS applies the rule of every command that connects to NATS:
// --nats-url, else NATS_URL, else the [nats] url of n (from the --config
// file cfgPath), else, when fallback is set, the embedded server n
// configures (nats.embedded_listen, NATS_EMBEDDED_LISTEN), else fallback
// (an empty fallback leaves url empty: bench then embeds a server). The
// credentials are always n's, so a URL that carries credentials too is a
// usage error (checkAuth).
func resolveNATS(flag string, o IO, n config.NATSConfig, cfgPath, fallback string) (natsTarget, error) {
	t := natsTarget{auth: n}
	t.resolveURL(flag, o, fallback)
	return t, t.checkAuth(cfgPath)
}

// resolveURL picks the URL and where it came from (see resolveNATS).
func (t *natsTarget) resolveURL(flag string, o IO, fallback string) {
	n := t.auth
	env := strings.TrimSpace(o.env("NATS_URL"))
	switch {
	case flag != "":
		t.url, t.from = flag, "--nats-url"
	case env != "":
		t.url, t.from = env, "NATS_URL"
	case n.URL != "":
		t.url, t.from = n.URL, n.URLFrom
		if t.from == "" {
			t.from = "nats.url"
		}
	case fallback != "" && embeddedURL(n.EmbeddedListen) != "":
		// What a worker on this configuration embeds and listens on.
		t.url, t.from = embeddedURL(n.EmbeddedListen), "nats.embedded_listen"
	case fallback != "":
		t.url, t.from = fallback, "default"
	}
}

// checkAuth refuses a URL whose userinfo carries credentials (a user and
// password, or a token) when the [nats] table of the --config file sets
// credentials too: which would log in is nobody's guess. incidentd refuses
// the same (nats.url with credentials beside nats.user, nats.token or
// nats.credentials_file or nats.nkey_seed_file is an invalid configuration); a URL from the file
// or, for setup and publish, from NATS_URL is already checked by loading
// the configuration, this catches --nats-url and bench's NATS_URL.
func (t natsTarget) checkAuth(cfgPath string) error {
	var keys string // the one method config validation lets the file set
	switch a := t.auth; {
	case a.CredentialsFile != "":
		keys = "nats.credentials_file"
	case a.NkeySeedFile != "":
		keys = "nats.nkey_seed_file"
	case a.User != "" && a.Password != "":
		keys = "nats.user and nats.password"
	case a.User != "":
		keys = "nats.user"
	case a.Token != "":
		keys = "nats.token"
	}
	u := credentialedURL(t.url)
	if keys == "" || u == "" {
		return nil
	}
	table := "the [nats] table"
	if cfgPath != "" {
		table += " of " + cfgPath
	}
	return fmt.Errorf("%w: %s %q carries credentials, and so does %s (%s): choose one authentication method, the URL's userinfo or the file's credentials",
		errUsage, t.from, config.RedactNATSURL(u), table, keys)
}

// credentialedURL returns the first of the comma-separated NATS URLs that
// carries a userinfo (as config validation reads them; one that does not
// parse, when it holds an '@'), or "".
func credentialedURL(s string) string {
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		full := u
		if !strings.Contains(u, "://") {
			full = "nats://" + u
		}
		parsed, err := url.Parse(full)
		if err != nil && strings.Contains(u, "@") || err == nil && parsed.User != nil {
			return u
		}
	}
	return ""
}

// embeddedURL is the client URL of an embedded server listening on listen
// (a wildcard host reached on loopback), or "" when it has no fixed port.
func embeddedURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// redacted is the target's URL with its secrets masked.
func (t natsTarget) redacted() string { return config.RedactNATSURL(t.url) }

// connect dials t with the worker's [nats] options (app.NATSOptions) under
// the name incidentctl. The error names the URL with its secrets masked.
func connect(t natsTarget) (*nats.Conn, error) {
	opts := append(app.NATSOptions(t.auth), nats.Name("incidentctl"), nats.Timeout(5*time.Second))
	nc, err := nats.Connect(t.url, opts...)
	if err != nil {
		return nil, app.NATSConnectError(t.url, t.from, err)
	}
	return nc, nil
}

// natsURLHelp is the --nats-url help of setup and publish.
const natsURLHelp = "NATS server (default $NATS_URL, else the [nats] url of --config, else the embedded server a worker on that configuration listens on: nats.embedded_listen or $NATS_EMBEDDED_LISTEN, " + DefaultNATSURL + " by default)"
