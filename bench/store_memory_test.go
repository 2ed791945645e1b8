package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/coalesce-go/coalesce/internal/keyhash"
	"github.com/coalesce-go/coalesce/internal/store"
	"github.com/maypok86/otter/v2"
)

// The memory, GC and fill-latency report runs each cache in its own process
// (this test binary re-executed with childEnv naming the cache and the
// mode), so that one cache's RSS does not include another's.
//
//	cd bench && COALESCE_BENCH=1 go test -run TestStoreReport -v -timeout 30m
const (
	childEnv   = "COALESCE_STORE_CHILD" // "mode:cache"
	budget     = 1 << 30
	valueSize  = 128
	fillKeys   = 10_000_000 // distinct keys offered in the memory run
	latencyTo  = 6_000_000  // entries inserted in the latency run
	resultLine = "STORE-RESULT "
)

var cacheNames = []string{"coalesce/store", "otter/v2", "fastcache"}

// testKey is the i-th distinct key: two splitmix64 outputs, as uniform as
// the keyed hash the store is fed in production.
func testKey(i uint64) keyhash.Key {
	return keyhash.Key{Hi: splitmix(i), Lo: splitmix(i ^ 0xdeadbeefcafe)}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// cacheUnderTest is the surface the report drives.
type cacheUnderTest struct {
	// retains is true for a cache that keeps the slice it is given (otter),
	// so the driver allocates a value per Set, as a user would; the others
	// copy, so the driver reuses one buffer and the process's garbage is not
	// counted against them.
	retains bool
	set     func(k keyhash.Key, v []byte)
	get     func(k keyhash.Key, dst []byte) ([]byte, bool)
	entries func(offered int) int
}

func newCache(t testing.TB, name string) cacheUnderTest {
	switch name {
	case "coalesce/store":
		s, err := store.New(store.Config{MaxBytes: budget})
		if err != nil {
			t.Fatal(err)
		}
		return cacheUnderTest{
			set:     func(k keyhash.Key, v []byte) { _ = s.Set(k, v) },
			get:     s.Get,
			entries: func(int) int { return s.Stats().Entries },
		}
	case "otter/v2":
		c := otter.Must(&otter.Options[keyhash.Key, []byte]{
			MaximumWeight: budget,
			Weigher:       func(_ keyhash.Key, v []byte) uint32 { return uint32(16 + len(v)) },
		})
		return cacheUnderTest{
			retains: true,
			set:     func(k keyhash.Key, v []byte) { c.Set(k, v) },
			get: func(k keyhash.Key, dst []byte) ([]byte, bool) {
				v, ok := c.GetIfPresent(k)
				return append(dst, v...), ok
			},
			entries: func(int) int { c.CleanUp(); return c.EstimatedSize() },
		}
	case "fastcache":
		c := fastcache.New(budget)
		var kb [16]byte
		enc := func(k keyhash.Key) []byte {
			for i := range 8 {
				kb[i], kb[8+i] = byte(k.Hi>>(8*i)), byte(k.Lo>>(8*i))
			}
			return kb[:]
		}
		return cacheUnderTest{
			set: func(k keyhash.Key, v []byte) { c.Set(enc(k), v) },
			get: func(k keyhash.Key, dst []byte) ([]byte, bool) {
				n := len(dst)
				dst = c.Get(dst, enc(k))
				return dst, len(dst) > n
			},
			entries: func(offered int) int {
				held := 0
				for i := range offered {
					if c.Has(enc(testKey(uint64(i)))) {
						held++
					}
				}
				return held
			},
		}
	}
	t.Fatalf("unknown cache %q", name)
	return cacheUnderTest{}
}

// childResult is what a child process reports, one JSON line.
type childResult struct {
	Cache, Mode             string
	Entries                 int
	RSS, Heap               int64
	MarkPerCycle            time.Duration
	FillSeconds             float64
	SetP50, SetP999, SetMax time.Duration
	GetP50, GetP999, GetMax time.Duration
}

// TestStoreChild is the child side; it does nothing unless childEnv is set.
func TestStoreChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("runs only as a child of TestStoreReport")
	}
	mode, name, _ := strings.Cut(spec, ":")
	c := newCache(t, name)
	r := childResult{Cache: name, Mode: mode}
	start := time.Now()
	switch mode {
	case "memory":
		buf := make([]byte, valueSize)
		for i := range uint64(fillKeys) {
			v := buf
			if c.retains {
				v = make([]byte, valueSize)
			}
			v[0], v[1] = byte(i), byte(i>>8)
			c.set(testKey(i), v)
		}
		r.FillSeconds = time.Since(start).Seconds()
		r.Entries = c.entries(fillKeys)
		r.MarkPerCycle = gcMarkPerCycle(3)
		r.RSS = rss(t)
		r.Heap = heapBytes()
	case "latency":
		set := make([]time.Duration, latencyTo)
		get := make([]time.Duration, latencyTo)
		rng := rand.New(rand.NewPCG(1, 2))
		var dst []byte
		buf := make([]byte, valueSize)
		for i := range uint64(latencyTo) {
			v := buf
			if c.retains {
				v = make([]byte, valueSize)
			}
			k := testKey(i)
			t0 := time.Now()
			c.set(k, v)
			t1 := time.Now()
			dst, _ = c.get(testKey(rng.Uint64N(i+1)), dst[:0])
			t2 := time.Now()
			set[i], get[i] = t1.Sub(t0), t2.Sub(t1)
		}
		r.FillSeconds = time.Since(start).Seconds()
		r.Entries = c.entries(latencyTo)
		r.SetP50, r.SetP999, r.SetMax = percentiles(set)
		r.GetP50, r.GetP999, r.GetMax = percentiles(get)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("%s%s\n", resultLine, b)
	runtime.KeepAlive(c)
}

func percentiles(d []time.Duration) (p50, p999, maxd time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*999/1000], d[len(d)-1]
}

// gcMarkPerCycle forces n collections and returns the GC mark CPU time
// (assist + dedicated + idle workers) per cycle over them.
func gcMarkPerCycle(n int) time.Duration {
	names := []string{
		"/cpu/classes/gc/mark/assist:cpu-seconds",
		"/cpu/classes/gc/mark/dedicated:cpu-seconds",
		"/cpu/classes/gc/mark/idle:cpu-seconds",
		"/gc/cycles/total:gc-cycles",
	}
	read := func() (cpu float64, cycles uint64) {
		s := make([]metrics.Sample, len(names))
		for i, name := range names {
			s[i].Name = name
		}
		metrics.Read(s)
		for _, x := range s[:3] {
			cpu += x.Value.Float64()
		}
		return cpu, s[3].Value.Uint64()
	}
	runtime.GC() // finish any cycle in flight, so the deltas cover whole cycles
	cpu0, c0 := read()
	for range n {
		runtime.GC()
	}
	cpu1, c1 := read()
	return time.Duration((cpu1 - cpu0) / float64(c1-c0) * float64(time.Second))
}

func heapBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// rss reads the process's resident set from /proc/self/status.
func rss(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func runChild(t *testing.T, mode, name string) childResult {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreChild$", "-test.v", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), childEnv+"="+mode+":"+name)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", mode, name, err, out.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), resultLine); ok {
			var r childResult
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("%s %s: no result line in\n%s", mode, name, out.String())
	return childResult{}
}

// TestStoreReport prints the memory, GC and fill-latency comparison. It takes
// a few minutes and runs only with COALESCE_BENCH=1.
func TestStoreReport(t *testing.T) {
	if os.Getenv("COALESCE_BENCH") == "" {
		t.Skip("set COALESCE_BENCH=1 to run the store memory/GC/latency report (minutes)")
	}
	const mib = 1 << 20
	var mem, lat []childResult
	for _, name := range cacheNames {
		mem = append(mem, runChild(t, "memory", name))
	}
	for _, name := range cacheNames {
		lat = append(lat, runChild(t, "latency", name))
	}
	ours := mem[0]
	fmt.Printf("\nMemory: %d distinct keys of 16 B with %d B values offered under a 1 GiB budget\n", fillKeys, valueSize)
	fmt.Printf("%-16s %11s %9s %9s %9s %11s %13s %9s\n", "cache", "entries", "vs ours", "RSS MiB", "heap MiB", "B/entry RSS", "GC mark/cycle", "fill s")
	for _, r := range mem {
		fmt.Printf("%-16s %11d %8.2fx %9.0f %9.0f %11.1f %13v %9.1f\n", r.Cache, r.Entries, float64(r.Entries)/float64(ours.Entries),
			float64(r.RSS)/mib, float64(r.Heap)/mib, float64(r.RSS)/float64(r.Entries), r.MarkPerCycle.Round(10*time.Microsecond), r.FillSeconds)
	}
	fmt.Printf("\nLatency while inserting %d distinct keys (each Set followed by a Get of a random earlier key)\n", latencyTo)
	fmt.Printf("%-16s %9s %10s %10s %9s %10s %10s\n", "cache", "Set p50", "Set p99.9", "Set max", "Get p50", "Get p99.9", "Get max")
	for _, r := range lat {
		fmt.Printf("%-16s %9v %10v %10v %9v %10v %10v\n", r.Cache, r.SetP50, r.SetP999, r.SetMax.Round(time.Microsecond), r.GetP50, r.GetP999, r.GetMax.Round(time.Microsecond))
	}
	if ours.RSS > budget*105/100 || ours.Entries < 6_500_000 || ours.MarkPerCycle > 20*time.Millisecond {
		t.Errorf("store misses its goals: %d entries (want ≥ 6.5 M), RSS %d MiB (want ≤ 1075), mark %v per cycle (want ≤ 20 ms)",
			ours.Entries, ours.RSS/mib, ours.MarkPerCycle)
	}
}
