package disk

// Benchmarks of the disk tier (issue #10), reported in docs/BENCHMARKS.md:
//
//	cd disk && go test -run '^$' -bench . -benchtime 20000x -timeout 60m
//
// BenchmarkOpen10M builds a store of 10 M results once under
// $TMPDIR/coalesce-disk-10M (about 2 GB, a few minutes) and reuses it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/internal/benchutil"
)

func benchGroup(b *testing.B, tiers []coalesce.Tier, secret []byte) *coalesce.Group {
	g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		return crashValue(in), nil
	}, coalesce.Options{Tiers: tiers, Secret: secret, Version: "v1", Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkMiss: one caller, every Get a new input (a memory miss), with
// an instant Func, so that what is timed is the library's miss path plus
// what the tier adds: a Load that misses and a Save. memory is the same
// Group without tiers, in the same run.
func BenchmarkMiss(b *testing.B) {
	for _, mode := range []string{"memory", "group", "always"} {
		b.Run(mode, func(b *testing.B) {
			var tiers []coalesce.Tier
			secret := bytes.Repeat([]byte{7}, 32)
			if mode != "memory" {
				sync, _ := ParseSyncMode(mode)
				st := openT(b, Options{Sync: sync})
				tiers, secret = []coalesce.Tier{st}, st.Secret()
			}
			g := benchGroup(b, tiers, secret)
			defer g.Close()
			inputs := make([][]byte, b.N)
			for i := range inputs {
				inputs[i] = []byte("miss-" + strconv.Itoa(i))
			}
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i, in := range inputs {
				t0 := time.Now()
				r, err := g.Get(ctx, in)
				lat[i] = time.Since(t0)
				if err != nil || r.Source != coalesce.Computed {
					b.Fatalf("%v %v", err, r.Source)
				}
			}
			b.StopTimer()
			benchutil.ReportLatency(b, lat)
		})
	}
}

// BenchmarkDiskHit: Gets answered from disk by a Group whose memory is
// empty (a restarted process), on a store of 100,000 results.
func BenchmarkDiskHit(b *testing.B) {
	const n = 100_000
	st := openT(b, Options{})
	fill := benchGroup(b, []coalesce.Tier{st}, st.Secret())
	for i := range n {
		if _, err := fill.Get(ctx, crashInput(i)); err != nil {
			b.Fatal(err)
		}
	}
	fill.Close()
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	g := benchGroup(b, []coalesce.Tier{st}, st.Secret())
	defer g.Close()
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		// A fresh input each time (memory would answer a repeat).
		in := crashInput((i * 7919) % n)
		if i >= n {
			b.Fatal("-benchtime above the store's size")
		}
		t0 := time.Now()
		r, err := g.Get(ctx, in)
		lat[i] = time.Since(t0)
		if err != nil || r.Source != coalesce.Loaded {
			b.Fatalf("input %q: %v %v", in, err, r.Source)
		}
	}
	b.StopTimer()
	benchutil.ReportLatency(b, lat)
}

// BenchmarkWrite: Saves of 128-byte results by 64 concurrent writers,
// with group commit and with sync=always (whose concurrent Saves share a
// sync).
func BenchmarkWrite(b *testing.B) {
	for _, mode := range []SyncMode{SyncGroupCommit, SyncAlways} {
		b.Run(mode.String(), func(b *testing.B) {
			st := openT(b, Options{Sync: mode})
			const writers = 64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += writers {
						k := tk("", "v1", i)
						if err := st.Save(ctx, k, coalesce.Outcome{Value: valueOf(k)}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := st.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkBytesPerResult: the store's files per 128-byte result after
// b.N Saves (use -benchtime 1000000x), as written (a store in use: log,
// memtable flushed, compactions as they happened) and fully compacted.
func BenchmarkBytesPerResult(b *testing.B) {
	dir := b.TempDir()
	st, err := Open(Options{Dir: dir, Logger: quiet(), ReserveBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b.N {
		k := tk("", "v1", i)
		if err := st.Save(ctx, k, coalesce.Outcome{Value: randomValue(rng)}); err != nil {
			if err == ErrQueueFull {
				_ = st.Flush()
				continue
			}
			b.Fatal(err)
		}
	}
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	stats := st.Stats()
	if err := st.db.Flush(); err != nil {
		b.Fatal(err)
	}
	asWritten := benchutil.DirBytes(b, dir)
	if err := st.db.Compact(b.Context(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	n := float64(stats.Entries)
	b.ReportMetric(float64(asWritten)/n, "B/result-as-written")
	b.ReportMetric(float64(benchutil.DirBytes(b, dir))/n, "B/result-compacted")
	b.ReportMetric(float64(stats.Bytes)/n, "B/result-accounted")
}

// randomValue is a 128-byte result that does not compress, as a hash or
// an embedding would not; the tests' valueOf repeats itself.
func randomValue(rng *rand.Rand) []byte {
	v := make([]byte, 0, 128)
	for len(v) < 128 {
		v = binary.LittleEndian.AppendUint64(v, rng.Uint64())
	}
	return v
}

// BenchmarkOpen10M: Open (and a first Load) of a store of 10 M results.
func BenchmarkOpen10M(b *testing.B) {
	const n = 10_000_000
	dir := filepath.Join(os.TempDir(), "coalesce-disk-10M")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		buildStore(b, dir, n)
	}
	size := benchutil.DirBytes(b, dir)
	b.ResetTimer()
	for i := range b.N {
		st, err := Open(Options{Dir: dir, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		r, err := st.Load(ctx, tk("", "v1", i*7919%n))
		if err != nil || !r.Found {
			b.Fatalf("first Load: %v %v", err, r.Found)
		}
		if i == 0 {
			if e := st.Stats().Entries; e != n {
				b.Fatalf("%d entries, want %d", e, n)
			}
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/n, "B/result")
}

// buildStore writes n records in the store's format straight into the
// engine, in large unsynced batches: Save's path would take as long as
// the benchmark's patience.
func buildStore(b *testing.B, dir string, n int) {
	os.RemoveAll(dir)
	start := time.Now()
	st, err := Open(Options{Dir: dir, Logger: quiet(), MaxBytes: 1 << 40, ReserveBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	m := st.meta
	rng := rand.New(rand.NewPCG(1, 2))
	const chunk = 20_000
	for i := 0; i < n; i += chunk {
		batch := st.db.NewBatch()
		for j := i; j < i+chunk && j < n; j++ {
			k := tk("", "v1", j)
			rk, _ := recordKey(k)
			rec := appendRecord(nil, rk, m.gen, 0, randomValue(rng))
			set(batch, rk, rec)
			set(batch, genKey(m.gen, rk), nil)
			m.bytes += cost(rk, len(rec))
			m.entries++
		}
		set(batch, metaKey, m.encode())
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	st.meta = m
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "built %d results in %v\n", n, time.Since(start).Round(time.Second))
}

// BenchmarkLoad10M: Loads on the store of 10 M results (see
// BenchmarkOpen10M), present and absent, after a warm-up of 100,000.
func BenchmarkLoad10M(b *testing.B) {
	const n = 10_000_000
	dir := filepath.Join(os.TempDir(), "coalesce-disk-10M")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		buildStore(b, dir, n)
	}
	st := openT(b, Options{Dir: dir})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		if _, err := st.Load(ctx, tk("", "v1", rng.IntN(n))); err != nil {
			b.Fatal(err)
		}
	}
	for _, present := range []bool{true, false} {
		name := "hit"
		if !present {
			name = "miss"
		}
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				j := rng.IntN(n)
				if !present {
					j += n
				}
				t0 := time.Now()
				r, err := st.Load(ctx, tk("", "v1", j))
				lat[i] = time.Since(t0)
				if err != nil || r.Found != present {
					b.Fatalf("Load %d: %v, found %v", j, err, r.Found)
				}
			}
			b.StopTimer()
			benchutil.ReportLatency(b, lat)
		})
	}
}

// BenchmarkChurn: b.N results of 128 B (use -benchtime 1200000x) into a
// 64 MiB store, 18× its capacity: the files' size under eviction, sampled
// every 200,000 writes, against the accounted size that MaxBytes bounds.
func BenchmarkChurn(b *testing.B) {
	const maxBytes = 64 << 20
	s := openT(b, Options{MaxBytes: maxBytes})
	rng := rand.New(rand.NewPCG(1, 2))
	var maxFiles, maxAccounted uint64
	sample := func() {
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		st := s.Stats()
		maxFiles, maxAccounted = max(maxFiles, st.DiskBytes), max(maxAccounted, uint64(st.Bytes))
	}
	for i := range b.N {
		k := tk("", "v1", i)
		for s.Save(ctx, k, coalesce.Outcome{Value: randomValue(rng)}) == ErrQueueFull {
			_ = s.Flush()
		}
		if i%200_000 == 199_999 {
			sample()
		}
	}
	sample()
	b.StopTimer()
	b.ReportMetric(float64(maxFiles)/maxBytes, "max-files/MaxBytes")
	b.ReportMetric(float64(maxAccounted)/maxBytes, "max-accounted/MaxBytes")
	b.ReportMetric(float64(s.Stats().Evictions), "evictions")
}
