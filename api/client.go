package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Client queries a running worker's API; incidentctl get/list/count use it.
// It implements Reader, so code written against a store works against a
// worker too.
type Client struct {
	// UserAgent is sent as every request's User-Agent header (the worker
	// logs it with an operator's state change); empty sends net/http's
	// default. incidentctl sets "incidentctl/<version>".
	UserAgent string

	base string
	http *http.Client
}

// NewClient returns a client for the worker at base ("http://host:8080");
// hc nil means a default client that does not follow redirects: the API
// never sends one, and following one answered another resource (a 307 for
// the path /api/v1/incidents/. led to the list, decoded as an incident).
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// ErrUnaddressable is returned for an id that no URL path can name: "."
// and "..", which HTTP path cleaning removes.
var ErrUnaddressable = errors.New("api: the id cannot be named in a URL path")

// incidentPath is the API path of incident id.
func incidentPath(id string) (string, error) {
	if id == "." || id == ".." {
		return "", fmt.Errorf("%w: %q (use the store itself: the --state-* flags or --config)", ErrUnaddressable, id)
	}
	return ListPath + "/" + url.PathEscape(id), nil
}

// List answers one page of incidents and the total that match.
func (c *Client) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	r, err := c.Query(ctx, Query{Filter: f, Page: p})
	return r.Incidents, err
}

// Count answers how many incidents match f.
func (c *Client) Count(ctx context.Context, f storage.Filter) (int64, error) {
	r, err := c.Query(ctx, Query{Filter: f, Page: storage.Page{Limit: 1}})
	return r.Total, err
}

// Query runs GET /api/v1/incidents. A Page.Limit of 0 asks for the default
// page (50).
func (c *Client) Query(ctx context.Context, q Query) (ListResponse, error) {
	var r ListResponse
	if err := checkSources(q.Filter.Sources); err != nil {
		return r, err
	}
	err := c.get(ctx, ListPath+"?"+q.Values().Encode(), "", &r)
	return r, err
}

// Get answers one incident, or an error wrapping storage.ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (*incident.Incident, error) {
	var in incident.Incident
	path, err := incidentPath(id)
	if err != nil {
		return nil, err
	}
	if err := c.get(ctx, path, id, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// open sends GET path; the caller closes the body.
func (c *Client) open(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("api request: %w", err)
	}
	return c.do(req)
}

// do sends req with the client's User-Agent. Its error names the URL with the userinfo masked as
// config.RedactNATSURL masks it (net/http masks a password, not a user
// without one, which is a token).
func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %w", RedactURLError(err))
	}
	return resp, nil
}

// RedactURLError masks the userinfo in the URL of err's *url.Error (the
// error of an http.Client), as config.RedactNATSURL does, and returns err.
func RedactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = config.RedactNATSURL(ue.URL)
	}
	return err
}

// BusyRetries is how many times a list or get answered 503 with
// Retry-After (the worker serves its limit of queries at once; see
// MaxQueries) is sent again, after the pause the answer asks for (5 s at
// most), before its 503 is the error.
const BusyRetries = 5

// get sends GET path and decodes a 200's body into into. id is the
// incident a GetPath request asks for ("" for other paths): only its 404
// means that the incident does not exist. A busy worker's 503 is retried
// (BusyRetries).
func (c *Client) get(ctx context.Context, path, id string, into any) error {
	var resp *http.Response
	var body []byte
	for attempt := 0; ; attempt++ {
		r, err := c.open(ctx, path)
		if err != nil {
			return err
		}
		body, err = io.ReadAll(io.LimitReader(r.Body, 64<<20))
		r.Body.Close()
		if err != nil {
			return fmt.Errorf("api read: %w", err)
		}
		resp = r
		pause, busy := retryAfter(r)
		if !busy || attempt == BusyRetries {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return answerError(resp, body, id)
		case <-t.C:
		}
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(resp, body, id)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("api decode: %w", err)
	}
	return nil
}

// retryAfter reports whether resp is a 503 asking to be retried (a
// Retry-After of whole seconds) and how long to wait: at least 100 ms, at
// most 5 s.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || n < 0 {
		return 0, false
	}
	return min(max(time.Duration(n)*time.Second, 100*time.Millisecond), 5*time.Second), true
}

// ErrNotAPI is the error (wrapped) of a 404 that is not the API's answer
// for an unknown incident: the URL is wrong (a path before /api/v1, another
// server), so it must not be taken for "no such incident".
var ErrNotAPI = errors.New("the URL does not look like an incidentd API")

// decodeError reads an error body: the API's JSON, or the text of another
// server (clipped).
func decodeError(body []byte) ErrorResponse {
	var e ErrorResponse
	_ = json.Unmarshal(body, &e)
	if e.Error == "" {
		e.Error = strings.Join(strings.Fields(string(body)), " ")
		if r := []rune(e.Error); len(r) > 200 {
			e.Error = string(r[:200]) + "…"
		}
	}
	return e
}

// answerError is the client's error for a non-200 answer to a request for
// incident id ("" when the request is not about one incident).
func answerError(resp *http.Response, body []byte, id string) error {
	e := decodeError(body)
	switch {
	case resp.StatusCode == http.StatusNotFound && id != "" && incidentNotFound(e, id):
		return &notFoundError{msg: e.Error}
	case resp.StatusCode == http.StatusNotFound:
		return notAPIError(resp, e)
	case e.Parameter != "":
		return &ParamError{Param: e.Parameter, Msg: strings.TrimPrefix(e.Error, "parameter "+e.Parameter+": ")}
	}
	return fmt.Errorf("api: %s: %s", resp.Status, e.Error)
}

// incidentNotFound reports whether a 404's body is the API's answer for an
// unknown incident id: its code, or (a worker from before the code) its
// exact message.
func incidentNotFound(e ErrorResponse, id string) bool {
	return e.Code == CodeIncidentNotFound || (e.Code == "" && e.Error == notFoundMessage(id))
}

// notAPIError is the error of a 404 that is not about an incident: it
// names the URL asked (userinfo masked) and what the server said.
func notAPIError(resp *http.Response, e ErrorResponse) error {
	u := ""
	if resp.Request != nil && resp.Request.URL != nil {
		u = " " + resp.Request.Method + " " + config.RedactNATSURL(resp.Request.URL.String())
	}
	return fmt.Errorf("api:%s: %s (%s): %w", u, resp.Status, e.Error, ErrNotAPI)
}

// checkSources refuses a source filter the API cannot express: its
// parameter separates values with commas, so "guard,rails" would be sent
// as the two sources "guard" and "rails".
func checkSources(sources []string) error {
	for _, s := range sources {
		if strings.Contains(s, ",") {
			return &ParamError{Param: "source", Msg: fmt.Sprintf("%q holds a comma: the API reads it as several sources, so it cannot filter on it", s)}
		}
	}
	return nil
}

var _ Reader = (*Client)(nil)

// NotFound is the error for an incident id no store holds, worded as the
// API's 404 body; it matches storage.ErrNotFound.
func NotFound(id string) error { return &notFoundError{msg: notFoundMessage(id)} }

func notFoundMessage(id string) string { return "incident " + quote(id) + " not found" }

// notFoundError is a 404: it reads as the server's message (which already
// says "not found") and matches storage.ErrNotFound.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string {
	if e.msg == "" {
		return storage.ErrNotFound.Error()
	}
	return e.msg
}

func (e *notFoundError) Unwrap() error { return storage.ErrNotFound }
