package executor_test

import (
	"context"
	"fmt"
	"log"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/server/executor"
)

// The daemon puts a coalesce.Group in front of an executor: each distinct
// input is computed once, however many clients ask for it.
func Example() {
	exec, err := executor.NewDemo(executor.DemoOptions{}) // or NewProcess, NewUpstream
	if err != nil {
		log.Fatal(err)
	}
	defer exec.Close()
	g, err := coalesce.New(exec.Compute, coalesce.Options{CacheBytes: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	r, err := g.Get(context.Background(), []byte("input"))
	if err != nil {
		log.Fatal(err)
	}
	again, _ := g.Get(context.Background(), []byte("input"))
	fmt.Println(len(r.Value), r.Source, again.Source)
	// Output: 128 computed hit
}
