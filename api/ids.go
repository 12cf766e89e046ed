package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// CanonicalID returns the stored form of an incident id written as a UUID
// with upper-case letters: the worker creates ids as UUID v7 strings,
// always lower-case. ok is false for an id that is not such a UUID (one in
// the 36-character hyphenated form, with an upper-case hex digit): ids
// imported from elsewhere can be any string, so only a UUID is folded.
func CanonicalID(id string) (lower string, ok bool) {
	if len(id) != 36 || strings.ToLower(id) == id {
		return "", false
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", false
	}
	return strings.ToLower(id), true
}

// GetAnyCase is r.Get(id) that also finds an incident whose UUID id is
// given in another case: the id as given first (an imported id is kept
// as it came), then its lower-case form (CanonicalID).
func GetAnyCase(ctx context.Context, r Reader, id string) (*incident.Incident, error) {
	in, err := r.Get(ctx, id)
	if lower, ok := CanonicalID(id); ok && errors.Is(err, storage.ErrNotFound) {
		return r.Get(ctx, lower)
	}
	return in, err
}

// SetStateAnyCase is storage.SetState that finds the incident as
// GetAnyCase does.
func SetStateAnyCase(ctx context.Context, s storage.Store, id string, to incident.State, now func() time.Time) (storage.StateChange, error) {
	ch, err := storage.SetState(ctx, s, id, to, now)
	if lower, ok := CanonicalID(id); ok && errors.Is(err, storage.ErrNotFound) {
		return storage.SetState(ctx, s, lower, to, now)
	}
	return ch, err
}
