package cluster_test

import (
	"context"
	"log"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/cluster"
)

// Every node runs the same: a Tier on the shared Redis, the secret it
// hands out, and a Group with the Tier behind its memory cache.
func ExampleNew() {
	ctx := context.Background()
	tier, err := cluster.New(ctx, cluster.Options{Addr: "127.0.0.1:6379"})
	if err != nil {
		log.Fatal(err) // Redis unreachable at start, or bad Options
	}
	defer tier.Close() // deferred first, so it runs after the Group's Close

	secret, err := tier.SharedSecret(ctx)
	if err != nil {
		log.Fatal(err)
	}
	g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		time.Sleep(20 * time.Millisecond) // the costly, idempotent computation
		return append([]byte("result of "), in...), nil
	}, coalesce.Options{Tiers: []coalesce.Tier{tier}, Secret: secret})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	r, err := g.Get(ctx, []byte("input"))
	if err != nil {
		log.Fatal(err)
	}
	// Computed here, Loaded if another node computed it, Hit afterwards.
	log.Printf("%s (%v); cluster: %+v", r.Value, r.Source, tier.Stats())
}
