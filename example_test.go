package coalesce_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/coalesce-go/coalesce"
)

// render stands for the costly, idempotent computation.
func render(ctx context.Context, input []byte) ([]byte, error) {
	select {
	case <-time.After(20 * time.Millisecond):
		return bytes.ToUpper(input), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Blocking use: the first Get computes, identical Gets in flight join it,
// and later Gets are answered from the cache.
func Example() {
	g, err := coalesce.New(render, coalesce.Options{Workers: 4, CacheBytes: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer g.Close()

	ctx := context.Background()
	r, err := g.Get(ctx, []byte("hello"))
	fmt.Println(string(r.Value), r.Source, err)
	r, err = g.Get(ctx, []byte("hello"))
	fmt.Println(string(r.Value), r.Source, err)
	// Output:
	// HELLO computed <nil>
	// HELLO hit <nil>
}

// Non-blocking use: Peek never waits; Start queues the computation and
// returns a Future that tells whether this caller was the first to ask.
func ExampleGroup_Start() {
	g, _ := coalesce.New(render, coalesce.Options{CacheBytes: 64 << 20})
	defer g.Close()

	status, _, _ := g.Peek([]byte("report"))
	fmt.Println("before:", status)

	f, _ := g.Start([]byte("report"))
	again, _ := g.Start([]byte("report"))
	fmt.Println("first:", f.First(), again.First())
	status, _, _ = g.Peek([]byte("report"))
	fmt.Println("meanwhile:", status)

	r, _ := f.Wait(context.Background())
	fmt.Println("result:", string(r.Value))
	status, v, _ := g.Peek([]byte("report"))
	fmt.Println("after:", status, string(v))
	// Output:
	// before: absent
	// first: true false
	// meanwhile: pending
	// result: REPORT
	// after: ready REPORT
}

// Batch use: duplicates inside the batch are computed once, and each input
// gets its own result or error.
func ExampleGroup_GetMany() {
	g, _ := coalesce.New(render, coalesce.Options{CacheBytes: 64 << 20, MaxInputSize: 8})
	defer g.Close()

	inputs := [][]byte{[]byte("a"), []byte("b"), []byte("a"), []byte("too long!")}
	results, errs := g.GetMany(context.Background(), inputs)
	for i := range inputs {
		if errs[i] != nil {
			fmt.Printf("%q: error\n", inputs[i])
			continue
		}
		fmt.Printf("%q: %s (%v)\n", inputs[i], results[i].Value, results[i].Source)
	}
	fmt.Println("computed:", g.Stats().Computed)
	// Output:
	// "a": A (computed)
	// "b": B (computed)
	// "a": A (joined)
	// "too long!": error
	// computed: 2
}

// A retry after a caller gave up joins the call still running instead of
// starting a second one beside it, and takes its result when it comes.
// Shutdown bounds how long closing waits for a function that ignores its
// context.
func ExampleGroup_Shutdown() {
	slow := func(ctx context.Context, input []byte) ([]byte, error) {
		time.Sleep(50 * time.Millisecond) // ignores ctx: the worst case
		return bytes.ToUpper(input), nil
	}
	g, _ := coalesce.New(slow, coalesce.Options{Workers: 2, CacheBytes: 64 << 20})

	impatient, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	_, err := g.Get(impatient, []byte("slow"))
	stop()
	fmt.Println(err)
	fmt.Println("overdue calls:", g.Stats().Overdue)

	// The retry waits in line behind the overdue call and gets its result.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fu, _ := g.Start([]byte("slow"))
	r, err := fu.Wait(ctx)
	fmt.Println(string(r.Value), r.Source, err)

	if err := g.Shutdown(ctx); err != nil {
		fmt.Println("shutdown:", err)
	}
	// Output:
	// context deadline exceeded
	// overdue calls: 1
	// SLOW joined <nil>
}

// Namespaces keep results apart, and a version names the computation:
// results of an older version are never served.
func ExampleGroup_Namespace() {
	g, err := coalesce.New(render, coalesce.Options{Workers: 2, CacheBytes: 16 << 20, Version: "v1"})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	ctx := context.Background()

	tenant, _ := g.Namespace("tenant-a", "")     // the Group's version, v1
	tenantV2, _ := g.Namespace("tenant-a", "v2") // the next version of the computation
	for _, n := range []*coalesce.Namespace{tenant, tenant, tenantV2} {
		r, _ := n.Get(ctx, []byte("hello"))
		fmt.Println(n.Name(), n.Version(), r.Source)
	}
	// Output:
	// tenant-a v1 computed
	// tenant-a v1 hit
	// tenant-a v2 computed
}
