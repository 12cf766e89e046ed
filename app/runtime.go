package app

import (
	"runtime/debug"
)

// Garbage-collector settings for a worker process, used unless the operator
// sets GOGC or GOMEMLIMIT. The worker allocates a lot of short-lived memory
// per event (decoded events, batch copies, Pebble's batch buffers); a higher
// GOGC cut its CPU per event by about 8 % in `incidentctl bench`, and the soft
// limit keeps the Go heap well inside a 512 MiB container (Pebble's block
// cache is allocated outside the Go heap).
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 384 << 20
)

// TuneRuntime applies DefaultGCPercent and DefaultMemoryLimit for whichever
// of GOGC and GOMEMLIMIT the environment leaves unset. It returns what it
// set, for the start-up log.
func TuneRuntime(lookup func(string) (string, bool)) (gcPercent int, memLimit int64) {
	gcPercent, memLimit = -1, -1
	if _, ok := lookup("GOGC"); !ok {
		debug.SetGCPercent(DefaultGCPercent)
		gcPercent = DefaultGCPercent
	}
	if _, ok := lookup("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(DefaultMemoryLimit)
		memLimit = DefaultMemoryLimit
	}
	return gcPercent, memLimit
}
