package pebble

import (
	"bytes"
	"fmt"
	"slices"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// listCursor walks suffixes held in memory, in ascending order: the
// fingerprint clause of a query. An identity has few incidents (one per
// reopen), so its h/ keys are read, each incident's record gives its
// last_seen, and the sorted suffixes serve the leapfrog like an index leaf.
type listCursor struct {
	suffixes [][]byte
	i        int
}

// openHistory builds the cursor of every incident of the fingerprints,
// within the suffix range [lo, hi) (nil: unbounded).
func openHistory(r pebbledb.Reader, fps []string, lo, hi []byte) (*listCursor, error) {
	c := &listCursor{}
	for _, fp := range fps {
		prefix := historyPrefix(fp)
		it, err := r.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return nil, fmt.Errorf("pebble history: %w", err)
		}
		var ids []string
		for ok := it.First(); ok; ok = it.Next() {
			ids = append(ids, string(it.Key()[len(prefix):]))
		}
		if err := it.Close(); err != nil {
			return nil, fmt.Errorf("pebble history: %w", err)
		}
		for _, id := range ids {
			in, ok, err := getRecord(r, id)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("pebble history: %s names missing incident %s", fp, id)
			}
			s := appendSuffix(nil, in.LastSeen, id)
			if (lo == nil || bytes.Compare(s, lo) >= 0) && (hi == nil || bytes.Compare(s, hi) < 0) {
				c.suffixes = append(c.suffixes, s)
			}
		}
	}
	slices.SortFunc(c.suffixes, bytes.Compare)
	return c, nil
}

func (c *listCursor) first() bool { c.i = 0; return c.i < len(c.suffixes) }
func (c *listCursor) next() bool  { c.i++; return c.i < len(c.suffixes) }
func (c *listCursor) key() []byte { return c.suffixes[c.i] }
func (c *listCursor) err() error  { return nil }
func (c *listCursor) close()      {}

func (c *listCursor) seekGE(s []byte) bool {
	for c.i < len(c.suffixes) && bytes.Compare(c.suffixes[c.i], s) < 0 {
		c.i++
	}
	return c.i < len(c.suffixes)
}
