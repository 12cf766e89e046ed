package pebble

import (
	"context"
	"fmt"
	"os"
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

// Fatalf is what Pebble calls when it cannot go on (a WAL or MANIFEST
// write failed: a full disk, a read-only or vanished file system,
// permission denied), and it must not return. Its default panicked: a
// Go stack trace and exit 2. This logs one error line naming the cause and
// exits 1: every batch acked is durable, what is not acked is redelivered.
func (z zapLogger) Fatalf(format string, args ...any) {
	z.l.Desugar().Error("pebble cannot go on; exiting (restart once the cause is fixed: disk space, permissions, a read-only file system)",
		zap.String("error", fmt.Sprintf(format, args...)))
	_ = z.l.Sync()
	os.Exit(1)
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
	// Pebble retries a failed flush or compaction at once: on a full disk
	// its default logged each failure, a thousand lines a second.
	l.BackgroundError = s.bgErrors.seen
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

// backgroundErrors counts the errors of Pebble's background work (flushes,
// compactions), and logs the first and then at most one every
// bgErrorEvery, with how many it did not log.
type backgroundErrors struct {
	log        *zap.Logger
	mu         sync.Mutex
	count      int64
	last       error
	logged     time.Time
	suppressed int64
}

// bgErrorEvery is how often a background error is logged at most.
const bgErrorEvery = 10 * time.Second

func (b *backgroundErrors) seen(err error) {
	b.mu.Lock()
	b.count++
	b.last = err
	now := time.Now()
	if !b.logged.IsZero() && now.Sub(b.logged) < bgErrorEvery {
		b.suppressed++
		b.mu.Unlock()
		return
	}
	n := b.suppressed
	b.logged, b.suppressed = now, 0
	b.mu.Unlock()
	b.log.Error("pebble background work failed (a flush or compaction; Pebble retries it)",
		zap.Error(err), zap.Int64("not_logged_since_last", n))
}

// read returns how many background errors happened.
func (b *backgroundErrors) read() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// watch cancels ctx (with the last error as its cause) once background
// errors have kept coming for giveUp, checking every tick: a compaction
// on a full disk fails and is retried for ever. It returns when ctx ends.
func (b *backgroundErrors) watch(ctx context.Context, cancel context.CancelCauseFunc, giveUp, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	seen := b.read()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.mu.Lock()
			n, last := b.count, b.last
			b.mu.Unlock()
			switch {
			case n == seen:
				since = time.Time{} // none since the last tick
			case since.IsZero():
				since = now
			case now.Sub(since) >= giveUp:
				cancel(fmt.Errorf("%w for %v: %w", ErrBackgroundFailing, giveUp, last))
				return
			}
			seen = n
		}
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
