// Package storetest is the conformance suite of the storage stage: the one
// set of tests every backend (memory, pebble, redis, redis cluster) runs, so
// they all keep the storage.Store contract the same way. A backend's test
// file calls Run with a Harness that opens fresh stores; the helpers
// (fixtures, Diff, CheckFilters, IngestAll) serve backend-specific tests too.
package storetest

import (
	"testing"

	"github.com/llm-im/incidentd/storage"
)

// Harness tells the suite how to get stores of one backend.
type Harness struct {
	// Open returns a fresh, empty store. It should register the store's
	// Close with t.Cleanup and ignore storage.ErrClosed there: some
	// subtests close the store themselves.
	Open func(t *testing.T) storage.Store
	// Reopen closes s and opens the same data again (same directory, same
	// Redis keys), registering the new store's cleanup. Leave it nil for
	// backends that keep nothing (memory): the persistence subtests skip.
	Reopen func(t *testing.T, s storage.Store) storage.Store
}

// Run runs every conformance subtest, each on a store of its own, in order.
// Subtest names are stable so one can be picked with
// -run 'TestX/TestIndexesStayExactAfterUpdate'.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	for _, tc := range Subtests() {
		t.Run(tc.Name, func(t *testing.T) { tc.Func(t, h) })
	}
}

// Subtest is one named conformance check.
type Subtest struct {
	Name string
	Func func(t *testing.T, h Harness)
}

// Subtests lists the conformance checks Run runs, in order.
func Subtests() []Subtest {
	return []Subtest{
		{"RoundTrip", testRoundTrip},
		{"Filters", testFilters},
		{"OrderAndPagination", testOrderAndPagination},
		{"TestIndexesStayExactAfterUpdate", testIndexesStayExactAfterUpdate},
		{"FindOpenAndLookup", testFindOpenAndLookup},
		{"ConflictWritesNothing", testConflictWritesNothing},
		{"IdempotentReingest", testIdempotentReingest},
		{"ConcurrentWriters", testConcurrentWriters},
		{"RealisticLog", testRealisticLog},
		{"LateTriggerRacesReopen", testLateTriggerRacesReopen},
		{"OperatorStateChanges", testOperatorStateChanges},
		{"OperatorRacesIngest", testOperatorRacesIngest},
		{"OperatorCloseRacesReopen", testOperatorCloseRacesReopen},
		{"Scan", testScan},
		{"ScanWhileWriting", testScanWhileWriting},
		{"ScanClosed", testScanClosed},
		{"PruneInactive", testPruneInactive},
		{"Stats", testStats},
		{"Closed", testClosed},
		{"Persistence", testPersistence},
	}
}
