// Package benchutil holds what the benchmarks of several modules (bench,
// disk) measure alike.
package benchutil

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// DirBytes is the size of the files under dir, or fails b.
func DirBytes(b testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// ReportLatency sorts lat and reports its median, 99th percentile and
// maximum as the benchmark's p50-ns, p99-ns and max-ns.
func ReportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
}
