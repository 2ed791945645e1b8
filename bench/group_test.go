package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coalesce-go/coalesce"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// The user-facing request path of a Group against the two ways a Go user
// would build the same thing from existing libraries, each configured as a
// user would and measured in the same run:
//
//	impl=coalesce  coalesce.New(fn, coalesce.Options{CacheBytes: 256 << 20})
//	impl=otter     otter/v2 with its loader: cache.Get(ctx, string(in), loader)
//	impl=sf-lru    x/sync/singleflight + hashicorp/golang-lru/v2
//
// Inputs are 512 bytes, the middle of the user's 256–1024, and arrive as
// []byte. That matters for fairness: a Group hashes the whole input with
// keyed HighwayHash-128 on every request (about 85 ns at 512 bytes), while the
// peers key their maps by string(in) and pay the conversion and Go's map
// hash instead. Results are 128 bytes.
//
// docs/BENCHMARKS.md has the results and the commands; in short
//
//	cd bench && go test -run xxx -bench 'Hit|Join|Miss' -count 6 > /tmp/group.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da -col /impl /tmp/group.txt
//
// and on a busy machine, runs of -count 1 in a loop, so that load that comes
// and goes falls on every implementation alike.
const (
	groupInputSize  = 512
	groupResultSize = 128
	hitInputs       = 10_000  // distinct inputs prefilled for the hit path
	hitStream       = 1 << 16 // length of the pre-drawn Zipf stream
	joinWidth       = 16      // callers that ask for each fresh input at once
	missEntries     = 1 << 16 // the peers' capacity in the miss path
)

// groupFunc is the costly function every implementation wraps.
type groupFunc func(ctx context.Context, in []byte) ([]byte, error)

// groupImpl is the request path under test: Get returns in's result,
// computing it at most once however many callers ask at the same time.
type groupImpl interface {
	Get(ctx context.Context, in []byte) ([]byte, error)
	Close()
}

// groupImpls lists the implementations in the order benchstat shows them;
// the first is the column the others are compared with. entries is how many
// results a peer's cache must hold (the Group is sized in bytes instead).
var groupImpls = []struct {
	name string
	new  func(tb testing.TB, fn groupFunc, entries int) groupImpl
}{
	{"coalesce", newCoalesceImpl},
	{"otter", newOtterImpl},
	{"sf-lru", newSFLRUImpl},
}

type coalesceImpl struct{ g *coalesce.Group }

func newCoalesceImpl(tb testing.TB, fn groupFunc, _ int) groupImpl {
	g, err := coalesce.New(coalesce.Func(fn), coalesce.Options{CacheBytes: 256 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	return coalesceImpl{g}
}

func (c coalesceImpl) Get(ctx context.Context, in []byte) ([]byte, error) {
	r, err := c.g.Get(ctx, in)
	return r.Value, err
}

func (c coalesceImpl) Close() { c.g.Close() }

type otterImpl struct {
	c      *otter.Cache[string, []byte]
	loader otter.Loader[string, []byte]
}

func newOtterImpl(tb testing.TB, fn groupFunc, entries int) groupImpl {
	c, err := otter.New(&otter.Options[string, []byte]{MaximumSize: entries})
	if err != nil {
		tb.Fatal(err)
	}
	// The loader is made once, as a user would keep it, so that a Get does
	// not allocate a closure.
	loader := otter.LoaderFunc[string, []byte](func(ctx context.Context, key string) ([]byte, error) {
		return fn(ctx, []byte(key))
	})
	return otterImpl{c: c, loader: loader}
}

func (o otterImpl) Get(ctx context.Context, in []byte) ([]byte, error) {
	return o.c.Get(ctx, string(in), o.loader)
}

func (o otterImpl) Close() { o.c.StopAllGoroutines() }

type sfLRUImpl struct {
	fn    groupFunc
	sf    singleflight.Group
	cache *lru.Cache[string, []byte]
}

func newSFLRUImpl(tb testing.TB, fn groupFunc, entries int) groupImpl {
	c, err := lru.New[string, []byte](entries)
	if err != nil {
		tb.Fatal(err)
	}
	return &sfLRUImpl{fn: fn, cache: c}
}

func (s *sfLRUImpl) Get(ctx context.Context, in []byte) ([]byte, error) {
	key := string(in)
	if v, ok := s.cache.Get(key); ok {
		return v, nil
	}
	v, err, _ := s.sf.Do(key, func() (any, error) {
		// Without this second look a caller that missed the cache just
		// before another's Do finished would compute again: Do forgets the
		// key as soon as it returns. A careful user writes it; it costs one
		// lookup per computation and nothing on a hit.
		if v, ok := s.cache.Get(key); ok {
			return v, nil
		}
		v, err := s.fn(ctx, in)
		if err == nil {
			s.cache.Add(key, v)
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (s *sfLRUImpl) Close() {}

// groupInput fills a 512-byte input that is distinct for every i: i in the
// first eight bytes, the rest random (seeded, so every run sees the same).
func groupInput(dst []byte, i uint64, r *rand.Rand) []byte {
	dst = dst[:groupInputSize]
	for j := 8; j < len(dst); j += 8 {
		binary.LittleEndian.PutUint64(dst[j:], r.Uint64())
	}
	binary.LittleEndian.PutUint64(dst, i)
	return dst
}

// groupResult is the function's result for in: 128 bytes that differ for
// inputs that differ in their first 128 bytes, as every input here does.
func groupResult(in []byte) []byte {
	v := make([]byte, groupResultSize)
	copy(v, in)
	v[groupResultSize-1] ^= 0xa5
	return v
}

// TestGroupImplsAgree checks the harness: every implementation returns the
// function's result for each input, computes it once, and hits afterwards.
func TestGroupImplsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var inputs [][]byte
	for i := range 8 {
		inputs = append(inputs, groupInput(make([]byte, groupInputSize), uint64(i), r))
	}
	for _, im := range groupImpls {
		t.Run(im.name, func(t *testing.T) {
			var calls atomic.Int64
			g := im.new(t, func(_ context.Context, in []byte) ([]byte, error) {
				calls.Add(1)
				return groupResult(in), nil
			}, 64)
			defer g.Close()
			for range 3 {
				for _, in := range inputs {
					v, err := g.Get(t.Context(), in)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(v, groupResult(in)) {
						t.Fatalf("Get(input %d) = %x..., want %x...", in[0], v[:8], groupResult(in)[:8])
					}
				}
			}
			if n := calls.Load(); n != int64(len(inputs)) {
				t.Fatalf("%d computations for %d distinct inputs", n, len(inputs))
			}
		})
	}
}

// TestGroupJoinRounds runs a few rounds of the join path's harness under
// each implementation, so that -race checks it and a wrong count fails fast.
func TestGroupJoinRounds(t *testing.T) {
	for _, im := range groupImpls {
		t.Run(im.name, func(t *testing.T) {
			if err := runJoinRounds(t, im.new, 20); err != nil {
				t.Fatal(err)
			}
		})
	}
}

var hitSetup = sync.OnceValues(func() ([][]byte, []uint16) {
	r := rand.New(rand.NewPCG(1, 1))
	inputs := make([][]byte, hitInputs)
	for i := range inputs {
		inputs[i] = groupInput(make([]byte, groupInputSize), uint64(i), r)
	}
	// s just above 1 is the closest math/rand/v2 allows to Zipf(1.0): the
	// top input takes about a tenth of the requests, the top 100 half.
	z := rand.NewZipf(r, 1.01, 1, hitInputs-1)
	stream := make([]uint16, hitStream)
	for i := range stream {
		stream[i] = uint16(z.Uint64())
	}
	return inputs, stream
})

// BenchmarkHit is the hit path: parallel Gets over a Zipf stream of inputs
// that are all cached. Each implementation returns what a user gets:
// otter and sf-lru hand back the cached slice itself, a Group a copy that
// the caller owns.
func BenchmarkHit(b *testing.B) {
	inputs, stream := hitSetup()
	for _, im := range groupImpls {
		b.Run("impl="+im.name, func(b *testing.B) {
			var calls atomic.Int64
			g := im.new(b, func(_ context.Context, in []byte) ([]byte, error) {
				calls.Add(1)
				return groupResult(in), nil
			}, 2*hitInputs)
			defer g.Close()
			ctx := context.Background()
			for _, in := range inputs {
				if _, err := g.Get(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			var seed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(1) * 7919 % hitStream)
				for pb.Next() {
					in := inputs[stream[i]]
					v, err := g.Get(ctx, in)
					if err != nil || len(v) != groupResultSize || v[0] != in[0] {
						b.Errorf("Get = %x, %v", v, err)
						return
					}
					if i++; i == hitStream {
						i = 0
					}
				}
			})
			b.StopTimer()
			if n := calls.Load(); n != hitInputs {
				b.Fatalf("%d computations for %d inputs: the hit path computed", n, hitInputs)
			}
		})
	}
}

// joinRound is one fresh input that joinWidth callers ask for at once.
type joinRound struct {
	in      []byte
	want    []byte
	arrived atomic.Int32
	all     chan struct{} // closed when every caller has arrived
}

// runJoinRounds asks joinWidth long-lived goroutines for each of rounds
// fresh inputs at once. The function blocks until all of them have arrived
// at Get, so (but for the last to arrive, which may find the result already
// cached) they join one computation. It fails unless every input was
// computed exactly once and every caller got its result.
func runJoinRounds(tb testing.TB, newImpl func(testing.TB, groupFunc, int) groupImpl, rounds int) error {
	var (
		calls atomic.Int64
		cur   atomic.Pointer[joinRound]
	)
	g := newImpl(tb, func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		rd := cur.Load()
		select {
		case <-rd.all:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return groupResult(in), nil
	}, rounds+1)
	defer g.Close()

	var (
		wg    sync.WaitGroup
		bad   atomic.Int64
		cmds  = make([]chan *joinRound, joinWidth)
		ctx   = context.Background()
		rng   = rand.New(rand.NewPCG(2, 2))
		inBuf = make([]byte, groupInputSize)
	)
	for w := range cmds {
		cmds[w] = make(chan *joinRound, 1)
		go func() {
			for rd := range cmds[w] {
				if rd.arrived.Add(1) == joinWidth {
					close(rd.all)
				}
				if v, err := g.Get(ctx, rd.in); err != nil || !bytes.Equal(v, rd.want) {
					bad.Add(1)
				}
				wg.Done()
			}
		}()
	}
	defer func() {
		for _, c := range cmds {
			close(c)
		}
	}()

	if b, ok := tb.(*testing.B); ok {
		b.ResetTimer()
	}
	for r := range rounds {
		// One buffer serves every round: the callers only read it, and
		// every implementation copies what it keeps.
		in := groupInput(inBuf, uint64(r), rng)
		rd := &joinRound{in: in, want: groupResult(in), all: make(chan struct{})}
		cur.Store(rd)
		wg.Add(joinWidth)
		for _, c := range cmds {
			c <- rd
		}
		wg.Wait()
	}
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}
	if n := calls.Load(); n != int64(rounds) {
		return fmt.Errorf("%d computations in %d rounds, want exactly one per round", n, rounds)
	}
	if n := bad.Load(); n > 0 {
		return fmt.Errorf("%d of %d Gets returned a wrong result or an error", n, rounds*joinWidth)
	}
	return nil
}

// BenchmarkJoin is the join path: one op is one caller of joinWidth that
// ask for a fresh input while its computation is in flight, so ns/op is the
// cost per joined request, harness included (waking joinWidth goroutines per
// round, the same for every implementation).
func BenchmarkJoin(b *testing.B) {
	for _, im := range groupImpls {
		b.Run("impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			if err := runJoinRounds(b, im.new, (b.N+joinWidth-1)/joinWidth); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkMiss is the miss path: parallel Gets of inputs never seen
// before, with a function that does nothing but build its result. For a
// Group every request is queued to a worker goroutine and the caller woken
// when it is done; the peers compute on the caller's own goroutine. The
// peers hold missEntries results and evict from then on; the Group's 256 MiB
// does not fill in a run of this length.
func BenchmarkMiss(b *testing.B) {
	for _, im := range groupImpls {
		b.Run("impl="+im.name, func(b *testing.B) {
			var calls atomic.Int64
			g := im.new(b, func(_ context.Context, in []byte) ([]byte, error) {
				calls.Add(1)
				return groupResult(in), nil
			}, missEntries)
			defer g.Close()
			var (
				next  atomic.Uint64
				total atomic.Int64
				ctx   = context.Background()
			)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine reuses one buffer: its random tail is
				// drawn once, and the counter in front keeps inputs distinct.
				in := groupInput(make([]byte, groupInputSize), 0, rand.New(rand.NewPCG(next.Add(1)<<40, 4)))
				n := int64(0)
				for pb.Next() {
					binary.LittleEndian.PutUint64(in, next.Add(1))
					v, err := g.Get(ctx, in)
					if err != nil || len(v) != groupResultSize || v[0] != in[0] {
						b.Errorf("Get = %x, %v", v, err)
						return
					}
					n++
				}
				total.Add(n)
			})
			b.StopTimer()
			if c, n := calls.Load(), total.Load(); c != n {
				b.Fatalf("%d computations for %d distinct inputs", c, n)
			}
		})
	}
}
