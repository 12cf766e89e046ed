package app

import (
	"runtime/debug"

	"github.com/llm-im/incidentd/config"
)

// Garbage-collector settings for a worker process, used unless the operator
// sets GOGC or GOMEMLIMIT. The worker allocates a lot of short-lived memory
// per event (decoded events, batch copies, Pebble's batch buffers); a higher
// GOGC cut its CPU per event by about 8 % in `incidentctl bench`, and the soft
// limit keeps the Go heap well inside a 512 MiB container.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 384 << 20
)

// pebbleMemtables is how many memtables Pebble may hold at once (its
// MemTableStopWritesThreshold in storage/pebble).
const pebbleMemtables = 4

// MemoryLimit is the soft limit TuneRuntime sets for cfg. Built with cgo,
// Pebble allocates its block cache and memtables outside the Go heap and
// the limit is DefaultMemoryLimit. Built without cgo (CGO_ENABLED=0, as
// static binaries often are), Pebble allocates them on the Go heap, and a
// limit that ignored them would keep the collector running flat out: the
// limit then adds the configured cache and the most memtables Pebble
// holds.
func MemoryLimit(cfg config.Config, cgo bool) int64 {
	limit := int64(DefaultMemoryLimit)
	if !cgo && cfg.State.Backend == config.BackendPebble {
		p := cfg.State.Pebble
		limit += int64(p.CacheSizeMB)<<20 + pebbleMemtables*int64(p.MemtableSizeMB)<<20
	}
	return limit
}

// TuneRuntime applies DefaultGCPercent and MemoryLimit(cfg) for whichever
// of GOGC and GOMEMLIMIT the environment leaves unset, each on its own (a
// set GOMEMLIMIT still gets GOGC=400 when GOGC is unset). It returns the
// values in force afterwards, whoever set them (-1: GOGC=off; math.MaxInt64:
// no memory limit), for the start-up log.
func TuneRuntime(cfg config.Config, lookup func(string) (string, bool)) (gcPercent int, memLimit int64) {
	if _, ok := lookup("GOGC"); !ok {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if _, ok := lookup("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(MemoryLimit(cfg, cgoEnabled))
	}
	// SetGCPercent has no read-only form: read by setting and restoring,
	// at start-up, before any other goroutine allocates much.
	gcPercent = debug.SetGCPercent(DefaultGCPercent)
	debug.SetGCPercent(gcPercent)
	return gcPercent, debug.SetMemoryLimit(-1)
}
