package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// StatePath is the API's one write: an operator's state change of incident
// {id} (POST, body StateRequest), served only when writes are enabled.
const StatePath = "/api/v1/incidents/{id}/state"

// ChangedHeader says, on a 200 from StatePath, whether the request changed
// the incident ("true") or found it in that state already ("false").
const ChangedHeader = "Incidentd-Changed"

// maxStateBody bounds a state request's body.
const maxStateBody = 4 << 10

// StateRequest is the body of POST /api/v1/incidents/{id}/state.
type StateRequest struct {
	// State is the state to set: Triaged, Investigating, Remediating,
	// Resolved or Closed (any case).
	State string `json:"state"`
}

// ErrWritesDisabled is the client's error for a worker whose API serves no
// writes (http.allow_writes is false); the message is the server's.
var ErrWritesDisabled = errors.New("api: writes disabled")

// writesDisabledMessage is the 403's error: what to set to enable writes.
const writesDisabledMessage = "operator state changes are disabled on this worker: the API has no authentication, so writes are opt-in; " +
	"set http.allow_writes = true (or HTTP_ALLOW_WRITES=true) and restart it, or change the store directly with incidentctl set-state --state-backend ..."

// EnableWrites serves the state changes of StatePath, written to s (the
// store the API reads) with storage.SetState. observe, when not nil, is
// called after each request that changed an incident. Without it that
// endpoint answers 403 naming http.allow_writes.
func (h *Handler) EnableWrites(s storage.Store, observe func(from, to incident.State)) *Handler {
	h.writer, h.observe = s, observe
	return h
}

// ParseTarget reads a state an operator may set (incident.OperatorTargets),
// in any case.
func ParseTarget(v string) (incident.State, error) {
	names := make([]string, len(incident.OperatorTargets))
	for i, st := range incident.OperatorTargets {
		names[i] = st.String()
	}
	want := "one of " + strings.Join(names, ", ")
	st, err := incident.ParseState(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("unknown state %q (want %s)", v, want)
	case st == incident.Detected:
		return 0, fmt.Errorf("%s is no state an operator sets: a new incident starts in it (want %s)", st, want)
	}
	return st, nil
}

// StopWrites makes the state endpoint answer 503 from now on: the worker
// is shutting down and is about to close its store, while its HTTP
// listener keeps serving reads and probes until the end of the drain.
func (h *Handler) StopWrites() { h.stopped.Store(true) }

func (h *Handler) setState(w http.ResponseWriter, r *http.Request) {
	if h.writer == nil {
		writeJSON(w, http.StatusForbidden, ErrorResponse{Error: writesDisabledMessage})
		return
	}
	if h.stopped.Load() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "this worker is shutting down: send the change to another worker, or retry when it is back"})
		return
	}
	if err := noParameters(r.URL.RawQuery, StatePath); err != nil {
		h.badRequest(w, err)
		return
	}
	id := r.PathValue("id")
	to, err := readStateRequest(w, r)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: fe.Error(), Field: fe.field})
			return
		}
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error()})
		return
	}
	ch, err := SetStateAnyCase(r.Context(), h.writer, id, to, time.Now)
	var te *incident.TransitionError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeNotFound(w, id)
		return
	case errors.As(err, &te):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: te.Error(), From: te.From.String(), To: te.To.String()})
		return
	case errors.Is(err, storage.ErrLeased):
		// Not lost races: another writer's lease outlived
		// storage.LeaseWaitLimit. Its message names the lease key's cause.
		h.log.Warn("operator state change refused: write lease", zap.String("id", id), zap.Error(err))
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: fmt.Sprintf("incident %s not changed: %v", quote(id), err), Code: CodeWriteLeased})
		return
	case errors.Is(err, storage.ErrConflict):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: fmt.Sprintf(
			"incident %s kept changing under concurrent writes (%d attempts): try again", quote(id), ch.Conflicts+1)})
		return
	case err != nil:
		h.fail(w, err)
		return
	}
	if ch.Changed {
		h.log.Info("operator state change", zap.String("id", ch.Incident.ID), zap.Stringer("from", ch.From), zap.Stringer("to", to),
			zap.Int64("version", ch.Incident.Version), zap.String("remote", r.RemoteAddr), zap.String("user_agent", r.UserAgent()))
		if h.observe != nil {
			h.observe(ch.From, to)
		}
	}
	w.Header().Set(ChangedHeader, fmt.Sprint(ch.Changed))
	writeJSON(w, http.StatusOK, incident.NewView(ch.Incident))
}

// fieldError is a bad member of a request body; the API answers 400 naming
// it in ErrorResponse.Field.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return "field " + e.field + ": " + e.msg }

// readStateRequest decodes the body: one JSON object with a state member
// and nothing else.
func readStateRequest(w http.ResponseWriter, r *http.Request) (incident.State, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxStateBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return 0, fmt.Errorf("body: larger than %d bytes", maxStateBody)
	case err != nil:
		return 0, fmt.Errorf("body: %w", err)
	case len(bytes.TrimSpace(body)) == 0:
		return 0, errors.New(`body: empty: want a JSON object such as {"state":"Investigating"}`)
	}
	state, err := stateMember(body)
	if err != nil {
		return 0, err
	}
	to, err := ParseTarget(state)
	if err != nil {
		return 0, &fieldError{field: "state", msg: err.Error()}
	}
	return to, nil
}

// errBodyShape is the 400 for a body that is not exactly one JSON object.
var errBodyShape = errors.New(`body: want exactly one JSON object such as {"state":"Investigating"}`)

// stateMember reads the body strictly, token by token: one JSON object
// whose only member is "state" (exact name, once) with a string value,
// then nothing. encoding/json alone would take a member given twice (the
// last wins: {"state":"Investigating","state":"Closed"} closed the
// incident for good), match names in any case and ignore what follows
// the object once it starts with } or ].
func stateMember(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", errBodyShape
	}
	var state *string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", errBodyShape
		}
		name, _ := t.(string)
		switch {
		case name != "state":
			return "", &fieldError{field: name, msg: `unknown member: the body has only "state"`}
		case state != nil:
			return "", &fieldError{field: "state", msg: "given twice"}
		}
		v, err := dec.Token()
		str, ok := v.(string)
		if err != nil || !ok {
			return "", &fieldError{field: "state", msg: `want a string such as "Investigating"`}
		}
		state = &str
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return "", errBodyShape
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("body: more after the JSON object")
	}
	if state == nil {
		return "", &fieldError{field: "state", msg: `missing: want {"state":"Investigating"} or another state`}
	}
	return *state, nil
}

// SetState asks the worker to set the incident's state (POST
// /api/v1/incidents/{id}/state) and returns the incident as stored and
// whether the request changed it. Errors: one matching storage.ErrNotFound
// (404), a *incident.TransitionError (409, the lifecycle refuses), one
// wrapping storage.ErrConflict (409, concurrent writes; storage.ErrLeased
// when another writer's write lease kept it out), one wrapping
// ErrWritesDisabled (403), or the server's message.
func (c *Client) SetState(ctx context.Context, id string, to incident.State) (*incident.Incident, bool, error) {
	body, _ := json.Marshal(StateRequest{State: to.String()})
	path, err := incidentPath(id)
	if err != nil {
		return nil, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path+"/state", bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("api request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, false, fmt.Errorf("api read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, stateError(resp, raw, id)
	}
	var in incident.Incident
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, false, fmt.Errorf("api decode: %w", err)
	}
	return &in, resp.Header.Get(ChangedHeader) != "false", nil
}

// stateError is the client's error for a non-200 answer to a state
// change of incident id.
func stateError(resp *http.Response, raw []byte, id string) error {
	e := decodeError(raw)
	switch resp.StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrWritesDisabled, e.Error)
	case http.StatusConflict:
		if e.Code == CodeWriteLeased {
			return &leasedError{msg: "api: " + e.Error}
		}
		from, ferr := incident.ParseState(e.From)
		to, terr := incident.ParseState(e.To)
		if ferr == nil && terr == nil {
			return &incident.TransitionError{ID: id, From: from, To: to, Reason: reason(e.Error)}
		}
		return fmt.Errorf("api: %s: %w", e.Error, storage.ErrConflict)
	}
	return answerError(resp, raw, id)
}

// reason is the reason part of a TransitionError's message.
func reason(msg string) string {
	if _, r, ok := strings.Cut(msg, " is not allowed: "); ok {
		return r
	}
	return msg
}

// leasedError is the client's error for a 409 CodeWriteLeased: the
// worker's message (which names the lease already), wrapping
// storage.ErrLeased.
type leasedError struct{ msg string }

func (e *leasedError) Error() string { return e.msg }

func (e *leasedError) Unwrap() error { return storage.ErrLeased }
