package pebble

import (
	"fmt"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// identities is the identity pointer map (fingerprint -> latest incident
// id) held in memory: the f/ keys loaded at open and kept current by every
// commit, under applyMu, after the commit is durable. Lookup and Apply read
// it instead of seeking f/ keys, which at 1M stored incidents cost about a
// third of Lookup's CPU (a bloom-filtered SeekPrefixGE through every level
// per fingerprint).
//
// Fingerprint v1 ("v1:" and 32 lower-case hex digits) and canonical UUID ids
// are held as 16-byte arrays in a map without pointers (about 80 bytes an
// identity with the map's slack, nothing for the GC to scan); anything else (an imported store's
// own formats) goes to a string map.
type identities struct {
	mu      sync.RWMutex
	compact map[[16]byte][16]byte
	other   map[string]string
}

func newIdentities(n int) *identities {
	return &identities{compact: make(map[[16]byte][16]byte, n), other: map[string]string{}}
}

// compactFingerprint returns fp's 16 bytes when it is a v1 fingerprint.
func compactFingerprint[T string | []byte](fp T) ([16]byte, bool) {
	var k [16]byte
	if len(fp) != 35 || string(fp[:3]) != "v1:" {
		return k, false
	}
	return k, lowerHex(k[:], fp[3:])
}

// compactID returns id's 16 bytes when it is a canonical (lower-case,
// hyphenated) UUID, which formats back to the same string.
func compactID[T string | []byte](id T) ([16]byte, bool) {
	var u [16]byte
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return u, false
	}
	ok := lowerHex(u[0:4], id[0:8]) && lowerHex(u[4:6], id[9:13]) && lowerHex(u[6:8], id[14:18]) &&
		lowerHex(u[8:10], id[19:23]) && lowerHex(u[10:16], id[24:36])
	return u, ok
}

// lowerHex decodes src (2*len(dst) lower-case hex digits) into dst: upper
// case would not format back to the same string.
func lowerHex[T string | []byte](dst []byte, src T) bool {
	for i := range dst {
		hi, lo := hexValues[src[2*i]], hexValues[src[2*i+1]]
		if hi|lo > 15 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// hexValues maps a lower-case hex digit to its value, anything else to
// 0xff.
var hexValues = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// get returns fp's latest incident id, "" when the identity is unknown.
func (x *identities) get(fp string) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.getLocked(fp)
}

func (x *identities) getLocked(fp string) string {
	if k, ok := compactFingerprint(fp); ok {
		if id, ok := x.compact[k]; ok {
			return uuid.UUID(id).String()
		}
	}
	return x.other[fp]
}

// getMany fills out[fp] for every fingerprint, "" for unknown ones.
func (x *identities) getMany(fps []string, out map[string]string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, fp := range fps {
		out[fp] = x.getLocked(fp)
	}
}

// set points fp at id; id "" removes the identity.
func (x *identities) set(fp, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setLocked(fp, id)
}

func (x *identities) setLocked(fp, id string) {
	k, okFP := compactFingerprint(fp)
	if okFP {
		delete(x.compact, k)
	}
	delete(x.other, fp)
	if id == "" {
		return
	}
	if v, okID := compactID(id); okFP && okID {
		x.compact[k] = v
		return
	}
	x.other[fp] = id
}

// setAll applies the pointer moves of one commit.
func (x *identities) setAll(moves map[string]string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for fp, id := range moves {
		x.setLocked(fp, id)
	}
}

// len returns how many identities are known.
func (x *identities) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.compact) + len(x.other)
}

// loadIdentities reads every f/ key; n sizes the map (the incident count
// bounds the identity count).
func loadIdentities(r pebbledb.Reader, n int) (*identities, error) {
	x := newIdentities(n)
	it, err := r.NewIter(&pebbledb.IterOptions{LowerBound: famPointer, UpperBound: prefixEnd(famPointer)})
	if err != nil {
		return nil, fmt.Errorf("pebble: load identities: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		fp, id := it.Key()[len(famPointer):], it.Value()
		k, okFP := compactFingerprint(fp)
		v, okID := compactID(id)
		if okFP && okID {
			x.compact[k] = v
		} else {
			x.other[string(fp)] = string(id)
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("pebble: load identities: %w", err)
	}
	return x, nil
}
