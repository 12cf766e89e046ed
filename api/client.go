package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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
// hc nil means http.DefaultClient.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
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
	err := c.get(ctx, ListPath+"?"+q.Values().Encode(), &r)
	return r, err
}

// Get answers one incident, or an error wrapping storage.ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (*incident.Incident, error) {
	var in incident.Incident
	if err := c.get(ctx, ListPath+"/"+url.PathEscape(id), &in); err != nil {
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

func (c *Client) get(ctx context.Context, path string, into any) error {
	resp, err := c.open(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("api read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return &notFoundError{msg: e.Error}
		case e.Parameter != "":
			return &ParamError{Param: e.Parameter, Msg: strings.TrimPrefix(e.Error, "parameter "+e.Parameter+": ")}
		}
		return fmt.Errorf("api: %s: %s", resp.Status, e.Error)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("api decode: %w", err)
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
