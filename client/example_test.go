package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/client"
)

// Ask a daemon started with `coalesce serve` for a result, blocking, then
// without blocking. It needs a daemon, so it has no Output to check.
func Example() {
	c, err := client.New("http://127.0.0.1:7700", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := c.Get(ctx, []byte("what is 6 times 7?"))
	var apiErr *client.Error
	switch {
	case errors.Is(err, coalesce.ErrOverloaded) && errors.As(err, &apiErr):
		log.Printf("the daemon is busy; retry in %v", apiErr.RetryAfter)
		return
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("%d bytes (%v)\n", len(res.Value), res.Source)

	p, err := c.Start(ctx, []byte("a long question"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("key", p.Key, "started", p.Started)
	// ... do other work, then collect it.
	res, err = p.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes (%v)\n", len(res.Value), res.Source)
}

// Serve tenants apart: each Client from Namespace shares the connections
// of the first, and never gets another tenant's result. Bumping the
// version retires a tenant's older results; DeleteNamespace removes them
// from the daemon's disk.
func ExampleClient_Namespace() {
	c, err := client.New("http://127.0.0.1:7700", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tenant, err := c.Namespace("tenant-a", "v2")
	if err != nil {
		log.Fatal(err)
	}
	res, err := tenant.Get(ctx, []byte("what is 6 times 7?"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes (%v)\n", len(res.Value), res.Source) // hit, loaded (from the disk), joined or computed

	n, err := c.DeleteNamespace(ctx, "tenant-a", "v1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "results of v1 deleted")
}
