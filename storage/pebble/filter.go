package pebble

import (
	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// pointFilter is a bloom filter over the key families the store reads by
// point lookups (records r/, markers e/, identity pointers f/); index,
// counter and marker-list keys are only ever iterated, so hashing them into
// every sstable's filter was wasted work (about 60 % of the keys flushed
// and compacted) and wasted filter space. For a key of another family
// MayContain answers true ("maybe"), which is always correct: a point read
// of such a key would simply not be filtered.
type pointFilter struct {
	bloom bloom.FilterPolicy
}

// pointFilterName is written into every sstable's properties; tables
// written before it carry the plain bloom filter's name, which the store
// keeps registered so their filters stay usable.
const pointFilterName = "incidentd.point-families.v1"

func (p pointFilter) Name() string { return pointFilterName }

func (p pointFilter) MayContain(ftype pebbledb.FilterType, filter, key []byte) bool {
	if !pointFamily(key) {
		return true
	}
	return p.bloom.MayContain(ftype, filter, key)
}

func (p pointFilter) NewWriter(ftype pebbledb.FilterType) pebbledb.FilterWriter {
	return pointFilterWriter{p.bloom.NewWriter(ftype)}
}

type pointFilterWriter struct{ w pebbledb.FilterWriter }

func (w pointFilterWriter) AddKey(key []byte) {
	if pointFamily(key) {
		w.w.AddKey(key)
	}
}

func (w pointFilterWriter) Finish(buf []byte) []byte { return w.w.Finish(buf) }

// pointFamily reports whether key belongs to a family read by point lookups.
func pointFamily(key []byte) bool {
	if len(key) < 2 || key[1] != '/' {
		return false
	}
	switch key[0] {
	case famRecord[0], famMarker[0], famPointer[0]:
		return true
	}
	return false
}
