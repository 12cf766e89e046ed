package app

import (
	"net/http"
	"net/http/pprof"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/config"
)

// registerPprof serves the Go runtime's profiles under config.PprofPath
// (metrics.pprof): the index and the named profiles (heap, goroutine,
// allocs, block, mutex, threadcreate), a CPU profile (?seconds=N, 30 by
// default, below the listener's write limit of a minute), an execution
// trace and symbol lookups, all read-only (GET). The command line
// (pprof.Cmdline) is left out: profiles need it for nothing, and it is
// not the API's to show.
func registerPprof(mux *http.ServeMux) {
	p := config.PprofPath
	mux.Handle(p, api.ReadOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle(p+"cmdline", api.NotFoundHandler())
	mux.Handle(p+"profile", api.ReadOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle(p+"symbol", api.ReadOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle(p+"trace", api.ReadOnly(http.HandlerFunc(pprof.Trace)))
}
