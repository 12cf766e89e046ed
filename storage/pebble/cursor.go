package pebble

import (
	"bytes"
	"errors"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// cursor walks index suffixes (the ordering part of an index key, shared by
// every index key of one incident) in ascending order, i.e. newest first.
type cursor interface {
	first() bool
	next() bool
	// seekGE moves to the first suffix >= s, never backwards.
	seekGE(s []byte) bool
	// key is the current suffix, valid until the next move.
	key() []byte
	err() error
	close()
}

// leaf iterates the members of one index value.
type leaf struct {
	it     *pebbledb.Iterator
	prefix []byte
	buf    []byte
}

func openLeaf(r pebbledb.Reader, prefix, lo, hi []byte) (*leaf, error) {
	opts := &pebbledb.IterOptions{
		LowerBound: append(append([]byte(nil), prefix...), lo...),
		UpperBound: prefixEnd(prefix),
	}
	if hi != nil {
		opts.UpperBound = append(append([]byte(nil), prefix...), hi...)
	}
	it, err := r.NewIter(opts)
	if err != nil {
		return nil, err
	}
	return &leaf{it: it, prefix: prefix}, nil
}

func (l *leaf) first() bool { return l.it.First() }
func (l *leaf) next() bool  { return l.it.Next() }
func (l *leaf) key() []byte { return l.it.Key()[len(l.prefix):] }
func (l *leaf) err() error  { return l.it.Error() }
func (l *leaf) close()      { _ = l.it.Close() }
func (l *leaf) valid() bool { return l.it.Valid() }

// seekGE steps forward a few times before seeking: when the clauses of an
// intersection are dense (a severity and a source), the next candidate is
// usually a few keys away, and Next is far cheaper than SeekGE.
func (l *leaf) seekGE(s []byte) bool {
	for range 8 {
		if !l.it.Valid() {
			return false
		}
		if bytes.Compare(l.key(), s) >= 0 {
			return true
		}
		l.it.Next()
	}
	if l.it.Valid() && bytes.Compare(l.key(), s) >= 0 {
		return true
	}
	l.buf = append(append(l.buf[:0], l.prefix...), s...)
	return l.it.SeekGE(l.buf)
}

// orCursor merges the leaves of one field (OR): an incident has one value
// per field, so no suffix appears in two leaves.
type orCursor []*leaf

func (o orCursor) first() bool {
	for _, l := range o {
		l.first()
	}
	return o.valid()
}

func (o orCursor) min() *leaf {
	var m *leaf
	for _, l := range o {
		if l.valid() && (m == nil || bytes.Compare(l.key(), m.key()) < 0) {
			m = l
		}
	}
	return m
}

func (o orCursor) valid() bool { return o.min() != nil }

func (o orCursor) next() bool {
	if m := o.min(); m != nil {
		m.next()
	}
	return o.valid()
}

func (o orCursor) seekGE(s []byte) bool {
	for _, l := range o {
		if l.valid() {
			l.seekGE(s)
		}
	}
	return o.valid()
}

func (o orCursor) key() []byte { return o.min().key() }

func (o orCursor) err() error {
	var errs []error
	for _, l := range o {
		errs = append(errs, l.err())
	}
	return errors.Join(errs...)
}

func (o orCursor) close() {
	for _, l := range o {
		l.close()
	}
}

// andCursor intersects clauses (AND) by leapfrogging: every clause seeks to
// the largest current suffix until all agree.
type andCursor []cursor

func (a andCursor) first() bool {
	for _, c := range a {
		if !c.first() {
			return false
		}
	}
	return a.align()
}

func (a andCursor) next() bool {
	if !a[0].next() {
		return false
	}
	return a.align()
}

func (a andCursor) seekGE(s []byte) bool {
	if !a[0].seekGE(s) {
		return false
	}
	return a.align()
}

// align leapfrogs from a[0]'s position to the next common suffix.
func (a andCursor) align() bool {
	var target []byte
	target = append(target, a[0].key()...)
	agreed := 1
	for i := 1; agreed < len(a); i = (i + 1) % len(a) {
		c := a[i]
		if !c.seekGE(target) {
			return false
		}
		if k := c.key(); !bytes.Equal(k, target) {
			target = append(target[:0], k...)
			agreed = 1
			continue
		}
		agreed++
	}
	return true
}

func (a andCursor) key() []byte { return a[0].key() }

func (a andCursor) err() error {
	var errs []error
	for _, c := range a {
		errs = append(errs, c.err())
	}
	return errors.Join(errs...)
}

func (a andCursor) close() {
	for _, c := range a {
		c.close()
	}
}
