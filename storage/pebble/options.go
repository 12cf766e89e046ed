package pebble

import (
	"fmt"
	"sync"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"go.uber.org/zap"
)

// options are the tuned Pebble options; the caller owns (and must Unref)
// the block cache.
func (s *Store) options() *pebbledb.Options {
	opts := &pebbledb.Options{
		Cache:                       pebbledb.NewCache(int64(s.cfg.CacheSizeMB) << 20),
		MemTableSize:                uint64(s.cfg.MemtableSizeMB) << 20,
		MemTableStopWritesThreshold: 4,
		// Compact L0 once four files pile up (2 cost about 6 % more CPU per
		// event in A/B drains: 15.9k vs 14.5k events per CPU second; reads
		// have room to spare) but stall writers only far later: a burst of
		// ingestion should slow down, not stop.
		L0CompactionThreshold: 4,
		L0StopWritesThreshold: 1000,
		LBaseMaxBytes:         64 << 20,
		BytesPerSync:          1 << 20,
		WALBytesPerSync:       0,
		MaxOpenFiles:          4096,
		FormatMajorVersion:    pebbledb.FormatNewest,
		CompactionConcurrencyRange: func() (int, int) {
			return 1, 2
		},
		Lock:          s.lock,
		Logger:        zapLogger{s.log.Sugar()},
		EventListener: s.listener(),
	}
	// Updates delete the old index keys at the head of each index value,
	// so tombstones cluster; Pebble's tombstone-density compactions then
	// rewrite whole bottom-level files again and again (measured: 16x write
	// amplification into L6). Ordinary compactions drop them anyway.
	opts.Experimental.TombstoneDenseCompactionThreshold = -1
	if s.cfg.BloomBitsPerKey > 0 {
		// Tables written before pointFilter carry the plain bloom filter.
		b := bloom.FilterPolicy(s.cfg.BloomBitsPerKey)
		opts.Filters = map[string]pebbledb.FilterPolicy{b.Name(): b}
	}
	for i := range opts.TargetFileSizes {
		opts.TargetFileSizes[i] = 4 << 20 << i
	}
	for i := range opts.Levels {
		l := &opts.Levels[i]
		l.BlockSize = 16 << 10
		l.IndexBlockSize = 256 << 10
		if s.cfg.BloomBitsPerKey > 0 {
			l.FilterPolicy = pointFilter{bloom.FilterPolicy(s.cfg.BloomBitsPerKey)}
		}
		if i < 3 {
			// The upper levels are small and rewritten by every compaction:
			// compressing them cost about 10 % of the worker's CPU per event
			// in A/B drains (17.6k vs 15.8k events per CPU second); the
			// bottom levels, where the data lives, stay Snappy-compressed.
			l.Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
		}
	}
	return opts
}

// zapLogger adapts zap to Pebble's Logger.
type zapLogger struct{ l *zap.SugaredLogger }

func (z zapLogger) Infof(format string, args ...any)  { z.l.Debugf(format, args...) }
func (z zapLogger) Errorf(format string, args ...any) { z.l.Errorf(format, args...) }
func (z zapLogger) Fatalf(format string, args ...any) {
	z.l.Errorf(format, args...)
	panic(fmt.Sprintf(format, args...))
}

// listener is the store's Pebble event listener: write stalls and
// on-disk corruption.
func (s *Store) listener() *pebbledb.EventListener {
	l := s.stall.listener()
	// Pebble's default for a corruption is Logger.Fatalf: a panic that
	// took the worker down on every start (found by a black-box run).
	// The read that met it fails with Pebble's corruption error instead:
	// the worker reports not ready and retries, its API still answers,
	// and incidentctl exits 1 naming the file.
	l.DataCorruption = s.corrupt.seen
	return l
}

// corruptionStats counts the on-disk corruptions Pebble detected, and logs
// each corrupt file once.
type corruptionStats struct {
	log   *zap.Logger
	mu    sync.Mutex
	count int64
	files map[string]bool
}

func (c *corruptionStats) seen(info pebbledb.DataCorruptionInfo) {
	c.mu.Lock()
	c.count++
	first := !c.files[info.Path]
	if first {
		if c.files == nil {
			c.files = map[string]bool{}
		}
		c.files[info.Path] = true
	}
	c.mu.Unlock()
	if first {
		c.log.Error("on-disk corruption: every read of what this file holds fails; stop the worker and restore the store from a backup (see the README)",
			zap.String("file", info.Path), zap.Error(info.Details))
	}
}

// read returns how many corruptions were detected.
func (c *corruptionStats) read() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// stallStats counts write stalls for the collector.
type stallStats struct {
	mu      sync.Mutex
	count   int64
	total   time.Duration
	started time.Time
}

func (st *stallStats) listener() *pebbledb.EventListener {
	return &pebbledb.EventListener{
		WriteStallBegin: func(pebbledb.WriteStallBeginInfo) {
			st.mu.Lock()
			st.count++
			st.started = time.Now()
			st.mu.Unlock()
		},
		WriteStallEnd: func() {
			st.mu.Lock()
			if !st.started.IsZero() {
				st.total += time.Since(st.started)
				st.started = time.Time{}
			}
			st.mu.Unlock()
		},
	}
}

// read returns the stall count and the total stall time, the current
// stall included.
func (st *stallStats) read() (int64, time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	total := st.total
	if !st.started.IsZero() {
		total += time.Since(st.started)
	}
	return st.count, total
}
