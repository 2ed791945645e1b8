package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/disk"
)

// tierSet is what the daemon runs behind its memory cache, and what the
// server needs to report on it.
type tierSet struct {
	disk       *disk.Store // nil with --data-dir none
	checks     map[string]func() error
	collectors []prometheus.Collector
}

// openTiers opens the tiers the flags ask for and adds them to opts.
func openTiers(f serveFlags, log *slog.Logger, opts *coalesce.Options) (*tierSet, error) {
	t := &tierSet{checks: map[string]func() error{}}
	if f.dataDir == "none" {
		return t, nil
	}
	mode, _ := disk.ParseSyncMode(f.syncMode)
	d, err := disk.Open(disk.Options{
		Dir:      f.dataDir,
		MaxBytes: int64(f.diskMaxGiB * (1 << 30)),
		Sync:     mode,
		Logger:   log.With("tier", "disk"),
	})
	if err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", f.dataDir, err)
	}
	t.disk = d
	opts.Secret = d.Secret()
	opts.Tiers = append(opts.Tiers, d)
	t.checks["disk"] = func() error {
		if st := d.Stats(); !st.Healthy {
			return fmt.Errorf("writes failing since %s: %s", st.LastErrorAt.Format("15:04:05"), st.LastError)
		}
		return nil
	}
	t.collectors = append(t.collectors, diskCollector{d})
	return t, nil
}

// deleteNamespace deletes a namespace's results (every version, or one)
// from the tiers that keep them.
func (t *tierSet) deleteNamespace(ns, version string) (int64, error) {
	if t.disk == nil {
		return 0, nil
	}
	if version == "" {
		return t.disk.DeleteNamespace(ns)
	}
	return t.disk.DeleteVersion(ns, version)
}

func (t *tierSet) close() error {
	var errs []error
	if t.disk != nil {
		errs = append(errs, t.disk.Close())
	}
	return errors.Join(errs...)
}

// diskCollector exports the disk tier's Stats, read once per scrape.
type diskCollector struct{ d *disk.Store }

type diskMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*disk.Stats) float64
}

func diskDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("coalesce_disk_"+name, help, nil, nil)
}

var diskMetrics = []diskMetric{
	{diskDesc("entries", "Results on disk (expired ones until they are met)."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.Entries) }},
	{diskDesc("bytes", "Accounted size of the results on disk, which --disk-max-gib bounds."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.Bytes) }},
	{diskDesc("capacity_bytes", "The disk tier's budget."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.MaxBytes) }},
	{diskDesc("files_bytes", "Size of the store's files."), prometheus.GaugeValue, func(s *disk.Stats) float64 { return float64(s.DiskBytes) }},
	{diskDesc("hits_total", "Memory misses found on disk."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Hits) }},
	{diskDesc("misses_total", "Memory misses not found on disk."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Misses) }},
	{diskDesc("writes_total", "Results written."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Writes) }},
	{diskDesc("write_errors_total", "Results whose write failed or was refused for want of space."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.WriteErrors) }},
	{diskDesc("dropped_total", "Results not written because the write queue was full."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Dropped) }},
	{diskDesc("read_errors_total", "Failed reads."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.ReadErrors) }},
	{diskDesc("evictions_total", "Results evicted for space."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Evictions) }},
	{diskDesc("corrupt_total", "Records that failed their checksum (deleted, never served)."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Corrupt) }},
	{diskDesc("expired_total", "Records found past their namespace's TTL (deleted)."), prometheus.CounterValue, func(s *disk.Stats) float64 { return float64(s.Expired) }},
	{diskDesc("healthy", "1 while writes succeed, 0 while they fail (a full disk, permissions)."), prometheus.GaugeValue, func(s *disk.Stats) float64 {
		if s.Healthy {
			return 1
		}
		return 0
	}},
}

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range diskMetrics {
		ch <- m.desc
	}
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.Stats()
	for _, m := range diskMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&st))
	}
}
