package pebble

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes Pebble's own metrics, read from db.Metrics() at
// scrape time. The store's size (incidentd_store_size_bytes) is not among
// them: the worker's metrics export it from Stats for every backend.
type collector struct {
	s *Store

	compactions, flushes, readAmp, stalls, stallSeconds  *prometheus.Desc
	l0Files, memtable, cacheHits, cacheMisses            *prometheus.Desc
	identities, corruptions, bgErrors                    *prometheus.Desc
	recordHits, recordMisses, recordEntries, recordBytes *prometheus.Desc
}

func newCollector(s *Store) *collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, nil, nil)
	}
	return &collector{
		s:             s,
		compactions:   d("incidentd_pebble_compactions_total", "Compactions Pebble ran since the store opened."),
		flushes:       d("incidentd_pebble_flushes_total", "Memtable flushes since the store opened."),
		readAmp:       d("incidentd_pebble_read_amplification", "Sublevels a read may have to consult (L0 sublevels plus non-empty levels)."),
		stalls:        d("incidentd_pebble_write_stalls_total", "Times Pebble delayed writes because flushes or compactions fell behind."),
		stallSeconds:  d("incidentd_pebble_write_stall_duration_seconds_total", "Time writes spent stalled."),
		l0Files:       d("incidentd_pebble_l0_files", "Sstables in level 0."),
		memtable:      d("incidentd_pebble_memtable_size_bytes", "Bytes allocated by memtables."),
		cacheHits:     d("incidentd_pebble_block_cache_hits_total", "Block cache hits."),
		cacheMisses:   d("incidentd_pebble_block_cache_misses_total", "Block cache misses."),
		identities:    d("incidentd_pebble_identities", "Identity pointers held in memory (about 80 bytes of heap each)."),
		corruptions:   d("incidentd_pebble_corruptions_total", "Reads that met on-disk corruption (a checksum mismatch, a damaged file): each fails; the store needs restoring from a backup."),
		bgErrors:      d("incidentd_pebble_background_errors_total", "Flushes and compactions that failed (a full disk, permissions, a read-only file system); Pebble retries them, and writes stall while flushes fail."),
		recordHits:    d("incidentd_pebble_record_cache_hits_total", "Stored incidents read from the record cache instead of Pebble."),
		recordMisses:  d("incidentd_pebble_record_cache_misses_total", "Stored incidents the record cache did not hold (read from Pebble)."),
		recordEntries: d("incidentd_pebble_record_cache_entries", "Records held by the record cache."),
		recordBytes:   d("incidentd_pebble_record_cache_bytes", "Approximate bytes the record cache holds (bounded by state.pebble.record_cache_mb; the heap it costs is larger, up to GOGC/100+1 times, until collected)."),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.compactions, c.flushes, c.readAmp, c.stalls, c.stallSeconds,
		c.l0Files, c.memtable, c.cacheHits, c.cacheMisses, c.identities, c.corruptions, c.bgErrors,
		c.recordHits, c.recordMisses, c.recordEntries, c.recordBytes} {
		ch <- d
	}
}

// Collect reads the metrics of the open database; a closed store reports
// nothing.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return
	}
	m := s.db.Metrics()
	stalls, stalled := s.stall.read()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.compactions, float64(m.Compact.Count))
	counter(c.flushes, float64(m.Flush.Count))
	gauge(c.readAmp, float64(m.ReadAmp()))
	counter(c.stalls, float64(stalls))
	counter(c.stallSeconds, stalled.Seconds())
	gauge(c.l0Files, float64(m.Levels[0].TablesCount))
	gauge(c.memtable, float64(m.MemTable.Size))
	counter(c.cacheHits, float64(m.BlockCache.Hits))
	counter(c.cacheMisses, float64(m.BlockCache.Misses))
	gauge(c.identities, float64(s.ids.len()))
	counter(c.corruptions, float64(s.corrupt.read()))
	counter(c.bgErrors, float64(s.bgErrors.read()))
	entries, bytes, hits, misses := s.records.stats()
	counter(c.recordHits, float64(hits))
	counter(c.recordMisses, float64(misses))
	gauge(c.recordEntries, float64(entries))
	gauge(c.recordBytes, float64(bytes))
}
