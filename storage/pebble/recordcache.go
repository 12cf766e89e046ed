package pebble

import (
	"sync"
	"sync/atomic"
)

// recordCache holds the encoded records (r/ values) of the incidents the
// store wrote last, so that Lookup finds the incidents a batch merges into
// without a Pebble read: a merge target that compactions moved into a new
// sstable is not in the block cache, and reading it cost about 14 µs of CPU
// (a file read and a Snappy decompression) in BenchmarkApply at 1M stored
// incidents. Incident streams repeat their hot identities, and every merge
// writes the record again, so the cache is write-through only: commits
// fill it (after the write is durable, under applyMu, before the write
// sequence moves; see readCache), reads never do, and under applyMu no
// entry is older than the store (a reader without it may see the record
// of the commit before the one being applied, as it would from Pebble).
// Delete drops its entry.
//
// Eviction is by generation: entries go to cur; when cur holds half the
// byte budget it becomes prev (the old prev is dropped) and a new cur
// starts. A hit in prev moves the entry to cur, so an incident that keeps
// being merged stays.
type recordCache struct {
	mu        sync.Mutex
	half      int // byte budget of one generation; 0 disables the cache
	cur, prev map[string][]byte
	curBytes  int
	prevBytes int

	hits, misses atomic.Uint64
}

// entryOverhead approximates a map entry's own bytes beyond the id and the
// record: the string and slice headers and the map's slack.
const entryOverhead = 64

func newRecordCache(bytes int) *recordCache {
	c := &recordCache{half: bytes / 2}
	c.cur, c.prev = map[string][]byte{}, map[string][]byte{}
	return c
}

// get returns id's record, nil when it is not cached. The caller must not
// modify it.
func (c *recordCache) get(id string) []byte {
	if c.half == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(id)
}

func (c *recordCache) getLocked(id string) []byte {
	if rec, ok := c.cur[id]; ok {
		c.hits.Add(1)
		return rec
	}
	rec, ok := c.prev[id]
	if !ok {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	delete(c.prev, id)
	c.prevBytes -= entrySize(id, rec)
	c.putLocked(id, rec)
	return rec
}

// getMany calls hit for every cached id and returns the others.
func (c *recordCache) getMany(ids []string, hit func(id string, rec []byte) error) (missing []string, err error) {
	if c.half == 0 {
		return ids, nil
	}
	found := make(map[string][]byte, len(ids))
	c.mu.Lock()
	for _, id := range ids {
		if rec := c.getLocked(id); rec != nil {
			found[id] = rec
		} else {
			missing = append(missing, id)
		}
	}
	c.mu.Unlock()
	for id, rec := range found { // decoded outside the lock
		if err := hit(id, rec); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// cachedRecord is one record a commit wrote (rec nil: deleted).
type cachedRecord struct {
	id  string
	rec []byte
}

// apply records what one durable commit wrote; the caller holds applyMu.
// The records are kept as they are, so the caller must not modify them.
func (c *recordCache) apply(recs []cachedRecord) {
	if c.half == 0 || len(recs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		c.dropLocked(r.id)
		if r.rec != nil {
			c.putLocked(r.id, r.rec)
		}
	}
}

func (c *recordCache) dropLocked(id string) {
	if rec, ok := c.cur[id]; ok {
		delete(c.cur, id)
		c.curBytes -= entrySize(id, rec)
	}
	if rec, ok := c.prev[id]; ok {
		delete(c.prev, id)
		c.prevBytes -= entrySize(id, rec)
	}
}

func (c *recordCache) putLocked(id string, rec []byte) {
	size := entrySize(id, rec)
	if size > c.half {
		return
	}
	if c.curBytes+size > c.half {
		c.prev, c.prevBytes = c.cur, c.curBytes
		c.cur, c.curBytes = make(map[string][]byte, len(c.prev)), 0
	}
	c.cur[id] = rec
	c.curBytes += size
}

// stats returns the cached entries, their approximate bytes, and the hits
// and misses so far.
func (c *recordCache) stats() (entries, bytes int, hits, misses uint64) {
	c.mu.Lock()
	entries, bytes = len(c.cur)+len(c.prev), c.curBytes+c.prevBytes
	c.mu.Unlock()
	return entries, bytes, c.hits.Load(), c.misses.Load()
}

func entrySize(id string, rec []byte) int { return len(id) + cap(rec) + entryOverhead }
