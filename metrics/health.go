package metrics

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ErrNoChecks is reported by Ready before any check was added: a worker that
// has not wired its parts yet is not ready.
var ErrNoChecks = errors.New("metrics: starting")

// Health is the set of readiness checks behind /readyz and incidentd_ready.
// It is safe for concurrent use.
type Health struct {
	mu     sync.RWMutex
	names  []string
	checks map[string]func() error
}

// NewHealth returns an empty Health (not ready until checks are added).
func NewHealth() *Health { return &Health{checks: map[string]func() error{}} }

// Add registers or replaces a named check; nil from check means healthy.
func (h *Health) Add(name string, check func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.checks[name]; !ok {
		h.names = append(h.names, name)
	}
	h.checks[name] = check
}

// Remove drops a check.
func (h *Health) Remove(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.checks, name)
	h.names = slices.DeleteFunc(h.names, func(n string) bool { return n == name })
}

// Status runs every check and returns the failing ones by name.
func (h *Health) Status() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := map[string]string{}
	if len(h.names) == 0 {
		out["worker"] = ErrNoChecks.Error()
	}
	for _, n := range h.names {
		if err := h.checks[n](); err != nil {
			out[n] = err.Error()
		}
	}
	return out
}

// Ready returns nil when every check passes, else an error naming them.
func (h *Health) Ready() error {
	st := h.Status()
	if len(st) == 0 {
		return nil
	}
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	slices.Sort(names)
	errs := make([]error, 0, len(names))
	for _, n := range names {
		errs = append(errs, errors.New(n+": "+st[n]))
	}
	return errors.Join(errs...)
}

// ReadyResponse is the JSON body of /readyz.
type ReadyResponse struct {
	Ready bool `json:"ready"`
	// Failing maps each failing check (nats, consumer, store) to its reason.
	Failing map[string]string `json:"failing,omitempty"`
}

// ReadyzHandler answers 200 {"ready":true} or 503 with the failing checks.
func (h *Health) ReadyzHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := h.Status()
		code := http.StatusOK
		if len(st) > 0 {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, ReadyResponse{Ready: len(st) == 0, Failing: st})
	})
}

// HealthzHandler answers 200 while the process lives.
func HealthzHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// Handler serves the Prometheus text format of g.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
