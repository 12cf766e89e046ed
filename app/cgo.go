//go:build cgo

package app

// cgoEnabled: Pebble's manual memory (block cache, memtables) is outside
// the Go heap.
const cgoEnabled = true
