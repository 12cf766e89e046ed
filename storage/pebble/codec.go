package pebble

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/llm-im/incidentd/incident"
)

// codecJSON marks a record whose body is the incident's JSON, the same
// snake_case document the API shows.
const codecJSON byte = 1

// errBadRecord is returned for a record with an unknown codec byte.
var errBadRecord = errors.New("pebble: unknown record encoding")

// encodeRecord returns the value stored under r/<id>.
func encodeRecord(in *incident.Incident) ([]byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode incident %s: %w", in.ID, err)
	}
	out := make([]byte, 0, len(body)+1)
	out = append(out, codecJSON)
	return append(out, body...), nil
}

// decodeRecord is encodeRecord's inverse. It does not keep b.
func decodeRecord(b []byte) (*incident.Incident, error) {
	if len(b) == 0 || b[0] != codecJSON {
		return nil, errBadRecord
	}
	in := new(incident.Incident)
	if err := json.Unmarshal(b[1:], in); err != nil {
		return nil, fmt.Errorf("decode incident: %w", err)
	}
	return in, nil
}
