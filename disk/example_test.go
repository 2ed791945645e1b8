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
