//go:build !cgo

package app

// cgoEnabled: without cgo, Pebble's manual memory is on the Go heap.
const cgoEnabled = false
