package disk_test

import (
	"context"
	"fmt"
	"os"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/disk"
)

// A Group with the disk tier: results survive the process, and the second
// Group (a restarted program) loads them instead of computing.
func Example_group() {
	dir, _ := os.MkdirTemp("", "disk-example-")
	defer os.RemoveAll(dir)
	computed := 0
	run := func() coalesce.Source {
		st, err := disk.Open(disk.Options{Dir: dir, Sync: disk.SyncAlways})
		if err != nil {
			panic(err)
		}
		defer st.Close()
		g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
			computed++
			return append([]byte("result of "), in...), nil
		}, coalesce.Options{Tiers: []coalesce.Tier{st}, Secret: st.Secret(), Version: "v1"})
		if err != nil {
			panic(err)
		}
		defer g.Close()
		r, err := g.Get(context.Background(), []byte("input"))
		if err != nil {
			panic(err)
		}
		return r.Source
	}
	fmt.Println(run(), run(), computed)
	// Output: computed loaded 1
}

// A key kept across a restart (an async request's, say) finds its result
// on disk with FindKey, without the input.
func Example_findKey() {
	dir, _ := os.MkdirTemp("", "disk-example-")
	defer os.RemoveAll(dir)
	open := func() (*disk.Store, *coalesce.Group) {
		st, err := disk.Open(disk.Options{Dir: dir, Sync: disk.SyncAlways})
		if err != nil {
			panic(err)
		}
		g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
			return append([]byte("result of "), in...), nil
		}, coalesce.Options{Tiers: []coalesce.Tier{st}, Secret: st.Secret(), Version: "v1"})
		if err != nil {
			panic(err)
		}
		return st, g
	}
	st, g := open()
	res, err := g.Get(context.Background(), []byte("input"))
	if err != nil {
		panic(err)
	}
	key, _ := g.KeyOf([]byte("input"))
	g.Close()
	st.Close()

	st, g = open() // the next run of the program
	defer st.Close()
	defer g.Close()
	status, found, err := g.FindKey(context.Background(), key)
	fmt.Println(res.Source, status, found.Source, string(found.Value), err)
	// Output: computed ready loaded result of input <nil>
}
