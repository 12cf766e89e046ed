// Package pebble is the embedded storage backend, the default last stage of
// the pipeline (`backend = "pebble"`): incidents, their set indexes, identity
// pointers, applied-event markers and per-value counters live in one
// CockroachDB Pebble LSM directory owned by one process. Every Apply is one
// version-checked, fsynced Pebble batch; List and Count are answered from
// ordered index keys (k-way merge within a field, leapfrog intersection
// across fields), never from a scan of all records.
package pebble

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// Config tunes the Pebble store; it mirrors [state.pebble] plus state.path
// and state.applied_retention.
type Config struct {
	// Path is the data directory, created when missing.
	Path string
	// CacheSizeMB is the block cache size.
	CacheSizeMB int
	// MemtableSizeMB is the size of one memtable.
	MemtableSizeMB int
	// BloomBitsPerKey sizes the bloom filters of every level; 0 disables
	// them.
	BloomBitsPerKey int
	// RecordCacheMB bounds the cache of the records written last, which
	// Lookup reads instead of Pebble (see recordCache); 0 (the default)
	// disables it.
	RecordCacheMB int
	// Sync fsyncs the WAL on every Apply and Delete. Without it a crash of
	// the machine (not of the process) may lose acknowledged batches.
	Sync bool
	// AppliedRetention is how long applied-event markers are kept.
	AppliedRetention time.Duration
	// PurgeInterval is how often expired markers are purged in the
	// background; <= 0 means a minute.
	PurgeInterval time.Duration
}

// DefaultConfig returns the defaults of config.Default()'s [state.pebble]
// with an empty Path.
func DefaultConfig() Config {
	return Config{
		CacheSizeMB:      256,
		MemtableSizeMB:   64,
		BloomBitsPerKey:  10,
		Sync:             true,
		AppliedRetention: 24 * time.Hour,
		PurgeInterval:    time.Minute,
	}
}

// Store is a storage.Store in a Pebble directory. All methods are safe for
// concurrent use.
type Store struct {
	cfg  Config
	log  *zap.Logger
	db   *pebbledb.DB
	lock *pebbledb.Lock
	// dirLock is the flock on the directory itself (lockDir), which a
	// deleted LOCK file does not release; nil where flock is missing.
	dirLock *os.File
	wopts   *pebbledb.WriteOptions
	stall   *stallStats
	corrupt *corruptionStats
	// bgErrors counts failed flushes and compactions.
	bgErrors *backgroundErrors

	// life guards closed: every call holds it shared, Close exclusively.
	life   sync.RWMutex
	closed bool

	// applyMu serialises the writers (Apply, Delete, the marker purge).
	applyMu sync.Mutex
	// counts are the per-value counters, mirrored from c/ keys; written
	// under applyMu and countMu, read under countMu.
	countMu sync.RWMutex
	counts  map[entry]int64
	// ids are the identity pointers, mirrored from f/ keys (see
	// identities).
	ids *identities
	// records are the records written last (see recordCache).
	records *recordCache

	// seq counts committed writes; cache is the last Lookup's reads,
	// tagged with seq (see readCache).
	seq   atomic.Uint64
	cache atomic.Pointer[readCache]
	// logs are the write logs of the last commits, by seq % logRing;
	// under applyMu.
	logs [logRing]*writeLog

	reg       prometheus.Registerer
	collector *collector

	// scans are the snapshots of Scans in progress, which Close releases.
	scanMu sync.Mutex
	scans  map[*pebbledb.Snapshot]struct{}

	stop chan struct{}
	done chan struct{}
}

var _ storage.Store = (*Store)(nil)

// New opens (creating when needed) the store in cfg.Path. A directory held
// by another process or another Store returns an error wrapping
// storage.ErrLocked. reg, when not nil, receives the Pebble collector.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Store, error) {
	cfg = withDefaults(cfg)
	if cfg.Path == "" {
		return nil, errors.New("pebble: state.path is empty")
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("pebble")
	if err := os.MkdirAll(cfg.Path, 0o750); err != nil {
		return nil, fmt.Errorf("pebble: create %s: %w", cfg.Path, err)
	}
	unfinished, err := foreignFiles(cfg.Path)
	if err != nil {
		return nil, err
	}
	lock, err := pebbledb.LockDirectory(cfg.Path, vfs.Default)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("pebble: lock %s: %w", cfg.Path, err)
		}
		return nil, fmt.Errorf("pebble: %s is in use by another process or store (%v): %w", cfg.Path, err, storage.ErrLocked)
	}
	dirLock, err := lockDir(cfg.Path)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	release := func() {
		_ = lock.Close()
		if dirLock != nil {
			_ = dirLock.Close()
		}
	}
	if err := removeUnfinished(cfg.Path, unfinished, log); err != nil {
		release()
		return nil, err
	}
	s := &Store{cfg: cfg, log: log, lock: lock, dirLock: dirLock, stall: &stallStats{}, corrupt: &corruptionStats{log: log}, bgErrors: &backgroundErrors{log: log}, records: newRecordCache(cfg.RecordCacheMB << 20),
		scans: map[*pebbledb.Snapshot]struct{}{},
		stop:  make(chan struct{}), done: make(chan struct{})}
	s.wopts = pebbledb.NoSync
	if cfg.Sync {
		s.wopts = pebbledb.Sync
	}
	opts := s.options()
	s.db, err = pebbledb.Open(cfg.Path, opts)
	opts.Cache.Unref()
	if err != nil {
		release()
		return nil, fmt.Errorf("pebble: open %s: %w", cfg.Path, err)
	}
	if err := s.loadCounters(); err != nil {
		_ = s.db.Close()
		release()
		return nil, err
	}
	if err := s.convertFingerprintIndex(); err != nil {
		_ = s.db.Close()
		release()
		return nil, err
	}
	if err := s.dropAllIndex(); err != nil {
		_ = s.db.Close()
		release()
		return nil, err
	}
	loadStart := time.Now()
	if s.ids, err = loadIdentities(s.db, int(s.counts[entry{fieldAll, ""}])); err != nil {
		_ = s.db.Close()
		release()
		return nil, err
	}
	if reg != nil {
		s.reg, s.collector = reg, newCollector(s)
		if err := reg.Register(s.collector); err != nil {
			_ = s.db.Close()
			release()
			return nil, fmt.Errorf("pebble: register metrics: %w", err)
		}
	}
	go s.purgeLoop()
	log.Info("opened", zap.String("path", cfg.Path), zap.Int64("incidents", s.counts[entry{fieldAll, ""}]),
		zap.Int("identities", s.ids.len()), zap.Duration("identities_load", time.Since(loadStart)), zap.Bool("sync", cfg.Sync))
	return s, nil
}

// ErrForeignDirectory means the data directory holds files but no Pebble
// database: another program's data (the old system's sled directory, for
// one), which the store must not open as an empty store beside them.
var ErrForeignDirectory = errors.New("pebble: the directory holds files but no Pebble database")

// HoldsNothing reports whether an entry of a data directory is no data of
// any store: a lock file, or the lost+found directory of a file system's
// root (a fresh volume mounted as the data directory). A directory holding
// only such entries is empty.
func HoldsNothing(e fs.DirEntry) bool {
	return e.Name() == "LOCK" || (e.Name() == "lost+found" && e.IsDir())
}

// creationFile matches the files Pebble writes while it creates a
// database, before the manifest marker that makes them one.
var creationFile = regexp.MustCompile(`^(MANIFEST-\d+|OPTIONS-\d+|\d+\.log|\d+\.dbtmp|marker\.format-version\.\d+\.\d+|CURRENT)$`)

// foreignFiles refuses a directory that holds anything but no database.
// Pebble's own files without a database are a creation that did not
// finish (the process killed while it created the store, before Open
// returned, so before anything was written): it returns them, for New to
// remove once it holds the directory's lock.
func foreignFiles(dir string) (unfinished []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pebble: %w", err)
	}
	entries = slices.DeleteFunc(entries, HoldsNothing)
	if len(entries) == 0 {
		return nil, nil
	}
	desc, err := pebbledb.Peek(dir, vfs.Default)
	if err != nil {
		return nil, fmt.Errorf("pebble: %s: %w", dir, err)
	}
	if desc.Exists {
		return nil, nil
	}
	for _, e := range entries {
		if e.Name() == moveJournal || (e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix)) {
			return nil, fmt.Errorf("%w: %s holds %s, the leftover of an interrupted incidentctl restore: run that restore again, which takes it up (see the README, backup and restore)",
				ErrForeignDirectory, dir, e.Name())
		}
		if !e.Type().IsRegular() || !creationFile.MatchString(e.Name()) {
			return nil, fmt.Errorf("%w: %s holds %s (a sled directory? Pebble cannot read it: give state.path a new or empty directory and migrate, see the README)",
				ErrForeignDirectory, dir, e.Name())
		}
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".log") && info.Size() > maxEmptyWAL {
			// Writes come only after the marker: this is a store whose
			// marker was lost, not a creation that stopped.
			return nil, fmt.Errorf("%w: %s holds Pebble's write-ahead log %s with data (%d bytes) but no manifest marker: a damaged store, not a new one; restore it from a backup (see the README)",
				ErrForeignDirectory, dir, e.Name(), info.Size())
		}
		unfinished = append(unfinished, e.Name())
	}
	return unfinished, nil
}

// maxEmptyWAL is the most a write-ahead log of a store that was never
// written to holds (11 bytes measured); one write is hundreds.
const maxEmptyWAL = 64

// removeUnfinished removes the files of a creation that did not finish
// (see foreignFiles), the directory's lock held, so that Pebble creates
// the database anew instead of meeting a manifest no marker names.
func removeUnfinished(dir string, files []string, log *zap.Logger) error {
	if len(files) == 0 {
		return nil
	}
	if desc, err := pebbledb.Peek(dir, vfs.Default); err != nil || desc.Exists {
		return nil // created meanwhile by the lock's previous holder: open it
	}
	for _, name := range files {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pebble: remove the files of an unfinished creation: %w", err)
		}
	}
	log.Warn("removed the files of a store creation that did not finish (the process was stopped while it created the store, before anything was written to it); creating it anew",
		zap.String("path", dir), zap.Strings("files", files))
	return nil
}

func withDefaults(cfg Config) Config {
	d := DefaultConfig()
	if cfg.CacheSizeMB <= 0 {
		cfg.CacheSizeMB = d.CacheSizeMB
	}
	if cfg.MemtableSizeMB <= 0 {
		cfg.MemtableSizeMB = d.MemtableSizeMB
	}
	if cfg.BloomBitsPerKey < 0 {
		cfg.BloomBitsPerKey = 0
	}
	if cfg.RecordCacheMB < 0 {
		cfg.RecordCacheMB = 0
	}
	if cfg.AppliedRetention <= 0 {
		cfg.AppliedRetention = d.AppliedRetention
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = d.PurgeInterval
	}
	return cfg
}

// loadCounters reads every c/ key into memory.
func (s *Store) loadCounters() error {
	s.counts = make(map[entry]int64)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: famCounter, UpperBound: prefixEnd(famCounter)})
	if err != nil {
		return fmt.Errorf("pebble: load counters: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		f, v, good := parseCounterKey(it.Key())
		if !good || len(it.Value()) != 8 {
			_ = it.Close()
			return fmt.Errorf("pebble: load counters: malformed key %q", it.Key())
		}
		s.counts[entry{f, v}] = decodeInt(it.Value())
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble: load counters: %w", err)
	}
	return nil
}

// dropAllIndex deletes the x/a ("all incidents") index keys that stores
// written before it was dropped still hold: nothing reads or moves them
// any more. One range deletion, once.
func (s *Store) dropAllIndex() error {
	lo := indexPrefix(fieldAll, "")
	lo = lo[:len(lo)-2] // x/a: the field, without the value terminator
	hi := prefixEnd(lo)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("pebble: drop x/a: %w", err)
	}
	found := it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble: drop x/a: %w", err)
	}
	if !found {
		return nil
	}
	if err := s.db.DeleteRange(lo, hi, pebbledb.Sync); err != nil {
		return fmt.Errorf("pebble: drop x/a: %w", err)
	}
	s.log.Info("dropped the all-incidents index of an older version (lists merge the severity indexes)")
	return nil
}

// convertFingerprintIndex turns the x/f keys of stores written before the
// h/ family (one per incident, moved on every update because they embed
// last_seen) into h/ keys, then drops the x/f range. Once.
func (s *Store) convertFingerprintIndex() error {
	lo := []byte{famIndex[0], famIndex[1], byte(fieldFingerprint)}
	hi := prefixEnd(lo)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("pebble: convert x/f: %w", err)
	}
	defer it.Close()
	if !it.First() {
		return it.Error()
	}
	start, n := time.Now(), 0
	wb := s.db.NewBatch()
	for ok := true; ok; ok = it.Next() {
		fp, suffix, good := splitEscaped(it.Key()[len(lo):])
		if !good || len(suffix) < timeLen+1 {
			_ = wb.Close()
			return fmt.Errorf("pebble: convert x/f: malformed key %q", it.Key())
		}
		if err := wb.Set(historyKey(fp, suffixID(suffix)), nil, nil); err != nil {
			_ = wb.Close()
			return fmt.Errorf("pebble: convert x/f: %w", err)
		}
		if n++; n%10_000 == 0 {
			if err := wb.Commit(pebbledb.NoSync); err != nil {
				return fmt.Errorf("pebble: convert x/f: %w", err)
			}
			wb = s.db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		_ = wb.Close()
		return fmt.Errorf("pebble: convert x/f: %w", err)
	}
	if err := wb.DeleteRange(lo, hi, nil); err != nil {
		_ = wb.Close()
		return fmt.Errorf("pebble: convert x/f: %w", err)
	}
	if err := wb.Commit(pebbledb.Sync); err != nil {
		return fmt.Errorf("pebble: convert x/f: %w", err)
	}
	s.log.Info("converted the fingerprint index of an older version to identity history keys",
		zap.Int("incidents", n), zap.Duration("took", time.Since(start)))
	return nil
}

// enter holds the store open for one call; the caller must s.life.RUnlock
// when err is nil.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

// latestRecord returns the decoded r/<id> from the record cache or else
// from the store; ok is false when it is absent. Reads that must agree
// with a snapshot (List) use getRecord.
func (s *Store) latestRecord(id string) (*incident.Incident, bool, error) {
	if rec := s.records.get(id); rec != nil {
		in, err := decodeRecord(rec)
		if err != nil {
			return nil, false, fmt.Errorf("pebble record %s: %w", id, err)
		}
		return in, true, nil
	}
	return getRecord(s.db, id)
}

// getRecord reads and decodes r/<id>; ok is false when it is absent.
func getRecord(r pebbledb.Reader, id string) (*incident.Incident, bool, error) {
	v, closer, err := r.Get(recordKey(id))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble get %s: %w", id, err)
	}
	in, err := decodeRecord(v)
	_ = closer.Close()
	if err != nil {
		return nil, false, fmt.Errorf("pebble record %s: %w", id, err)
	}
	return in, true, nil
}

// exists reports whether key is present.
func exists(r pebbledb.Reader, key []byte) (bool, error) {
	_, closer, err := r.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pebble get: %w", err)
	}
	_ = closer.Close()
	return true, nil
}

// Get returns one incident by id, or storage.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*incident.Incident, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	in, ok, err := s.latestRecord(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, storage.ErrNotFound
	}
	return in, nil
}

// FindOpen returns the active incident of an identity, or
// storage.ErrNotFound.
func (s *Store) FindOpen(ctx context.Context, fingerprint string) (*incident.Incident, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	id := s.ids.get(fingerprint)
	if id == "" {
		return nil, storage.ErrNotFound
	}
	in, ok, err := s.latestRecord(id)
	if err != nil || !ok || !in.Active() {
		return nil, errOr(err, storage.ErrNotFound)
	}
	return in, nil
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// Flush makes everything written durable: it syncs the WAL (a no-op cost
// when Sync is on) and flushes the memtable to an sstable.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.life.RUnlock()
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("pebble flush: %w", err)
	}
	return nil
}

// Stats reports the incident count (from the counters) and Pebble's disk
// space usage.
func (s *Store) Stats(ctx context.Context) (storage.Stats, error) {
	if err := s.enter(ctx); err != nil {
		return storage.Stats{}, err
	}
	defer s.life.RUnlock()
	return storage.Stats{
		Incidents:  s.counter(entry{fieldAll, ""}),
		SizeOnDisk: int64(s.db.Metrics().DiskSpaceUsage()),
	}, nil
}

// Checkpoint writes a consistent copy of the live store to dir, which must
// not exist yet: sstables are hard-linked where the filesystem allows, the
// WAL is flushed and copied. Open the copy with New like any directory.
func (s *Store) Checkpoint(dir string) error {
	if err := s.enter(context.Background()); err != nil {
		return err
	}
	defer s.life.RUnlock()
	if err := s.db.Checkpoint(dir, pebbledb.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebble checkpoint %s: %w", dir, err)
	}
	return nil
}

// Compact compacts the whole key space, dropping deleted and overwritten
// data (after a large purge, for instance).
func (s *Store) Compact(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.life.RUnlock()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go s.bgErrors.watch(cctx, cancel, compactGiveUp, time.Second)
	if err := s.db.Compact(cctx, []byte{0}, []byte{0xff}, true); err != nil {
		if cause := context.Cause(cctx); errors.Is(cause, ErrBackgroundFailing) {
			err = cause
		}
		return fmt.Errorf("pebble compact: %w", err)
	}
	return nil
}

// compactGiveUp is how long Compact goes on while Pebble's background work
// keeps failing (a full disk: it retries for ever).
const compactGiveUp = 30 * time.Second

// ErrBackgroundFailing is the cause of a Compact given up because flushes
// or compactions kept failing.
var ErrBackgroundFailing = errors.New("pebble: background work kept failing")

// Close stops the background purge, unregisters the collector, closes the
// database and releases the directory lock. Every later call, Close included, returns
// storage.ErrClosed.
func (s *Store) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return storage.ErrClosed
	}
	s.closed = true
	s.life.Unlock()
	close(s.stop)
	<-s.done
	if s.reg != nil {
		s.reg.Unregister(s.collector)
	}
	s.applyMu.Lock() // no writer is left mid-batch (they hold life too, but be explicit)
	defer s.applyMu.Unlock()
	s.closeScans()
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if s.dirLock != nil {
		if lerr := s.dirLock.Close(); err == nil {
			err = lerr
		}
	}
	if err != nil {
		return fmt.Errorf("pebble close: %w", err)
	}
	return nil
}

// Metrics returns Pebble's own metrics (LSM shape, compactions, cache),
// for diagnostics; its String method prints the familiar LSM table.
func (s *Store) Metrics() (*pebbledb.Metrics, error) {
	if err := s.enter(context.Background()); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	return s.db.Metrics(), nil
}
