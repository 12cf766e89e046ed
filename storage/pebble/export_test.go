package pebble

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes a store's collector to the external tests.
func Collector(s *Store) prometheus.Collector { return newCollector(s) }
