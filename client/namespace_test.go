package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// uniqueName returns a namespace no other test, or earlier run of this one
// (-count), uses.
func uniqueName(s string) string {
	return fmt.Sprintf("%s-%d", s, time.Now().UnixNano())
}

// keyOf returns the key of input's result in c's namespace and version,
// computing it if needed: Start answers with the key.
func keyOf(t *testing.T, ctx context.Context, c *Client, input []byte) coalesce.Key {
	t.Helper()
	p, err := c.Start(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return p.Key
}

// A result is served only in the namespace and version it was computed
// in: by input (Get, Start, GetMany) and by key (Poll).
func TestNamespaces(t *testing.T) {
	d := startDaemon(t, "fast")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := testContext(t)
			tenant := uniqueName("tenant")
			def := newClient(t, d, tr.socket, Options{})
			a := newClient(t, d, tr.socket, Options{Namespace: tenant})
			av2 := newClient(t, d, tr.socket, Options{Namespace: tenant, Version: "v2"})
			b, err := a.Namespace(tenant+"-b", "")
			if err != nil {
				t.Fatal(err)
			}
			defV2, err := def.Namespace("", "v2")
			if err != nil {
				t.Fatal(err)
			}
			in := input(t, "x")
			clients := []struct {
				name string
				c    *Client
			}{{"default", def}, {"tenant", a}, {"tenant v2", av2}, {"tenant b", b}, {"default v2", defV2}}
			var first []byte
			for _, c := range clients {
				res, err := c.c.Get(ctx, in)
				if err != nil || res.Source != coalesce.Computed {
					t.Fatalf("%s: first Get: %v %v; want computed, not another namespace's or version's result", c.name, res.Source, err)
				}
				// The demo executor's result depends on the input only.
				if first == nil {
					first = res.Value
				} else if !bytes.Equal(res.Value, first) {
					t.Errorf("%s: value %x, want %x", c.name, res.Value, first)
				}
			}
			keys := map[coalesce.Key]string{}
			for _, c := range clients {
				res, err := c.c.Get(ctx, in)
				if err != nil || res.Source != coalesce.Hit {
					t.Errorf("%s: second Get: %v %v; want a hit", c.name, res.Source, err)
				}
				k := keyOf(t, ctx, c.c, in)
				if other, dup := keys[k]; dup {
					t.Errorf("%s and %s have the same key %v", c.name, other, k)
				}
				keys[k] = c.name
			}

			// By key: found in its own namespace and version only.
			ka := keyOf(t, ctx, a, in)
			if res, err := a.Poll(ctx, ka); err != nil || res.Source != coalesce.Hit || !bytes.Equal(res.Value, first) {
				t.Errorf("Poll in the key's namespace: %v %v", res.Source, err)
			}
			for _, c := range []*Client{def, av2, b} {
				if _, err := c.Poll(ctx, ka); !errors.Is(err, ErrNotFound) {
					t.Errorf("Poll of a key of namespace %s in %q version %q: %v, want ErrNotFound", tenant, c.ns, c.version, err)
				}
			}

			// Start and Wait: the Pending polls in its Client's namespace.
			async := input(t, "async")
			p, err := av2.Start(ctx, async)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := p.Wait(ctx); err != nil || res.Source != coalesce.Computed {
				t.Errorf("Wait in %s v2: %v %v; want computed", tenant, res.Source, err)
			}
			if res, err := a.Get(ctx, async); err != nil || res.Source != coalesce.Computed {
				t.Errorf("Get in %s after computing in its v2: %v %v; want computed", tenant, res.Source, err)
			}

			// A batch: each namespace and version has its own results.
			fresh := input(t, "fresh")
			results, errs := b.GetMany(ctx, [][]byte{in, fresh})
			if errs[0] != nil || errs[1] != nil || results[0].Source != coalesce.Hit || results[1].Source != coalesce.Computed {
				t.Errorf("GetMany in %s-b: %v %v, %v %v; want hit, computed", tenant, results[0].Source, errs[0], results[1].Source, errs[1])
			}
			results, errs = av2.GetMany(ctx, [][]byte{fresh})
			if errs[0] != nil || results[0].Source != coalesce.Computed {
				t.Errorf("GetMany in %s v2 of an input computed in %s-b: %v %v; want computed", tenant, tenant, results[0].Source, errs[0])
			}
		})
	}
}

// A namespace or version the daemon refuses is a 400 bad_namespace, which
// wraps coalesce.ErrBadNamespace, for every call; what cannot be sent in a
// header is refused before any request.
func TestBadNamespace(t *testing.T) {
	d := startDaemon(t, "fast")
	ctx := testContext(t)
	isBad := func(err error) bool {
		var e *Error
		return errors.Is(err, coalesce.ErrBadNamespace) && errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Code == "bad_namespace"
	}
	good := newClient(t, d, false, Options{})
	key := keyOf(t, ctx, good, []byte("x"))
	for _, opts := range []Options{
		{Namespace: "has space"},
		{Namespace: "caf\u00e9"},
		{Namespace: strings.Repeat("n", coalesce.LimitNameLength+1)},
		{Namespace: "ok", Version: "v 2"},
		{Version: strings.Repeat("v", coalesce.LimitNameLength+1)},
	} {
		c := newClient(t, d, false, opts)
		if _, err := c.Get(ctx, []byte("x")); !isBad(err) {
			t.Errorf("Get with %q %q: %v; want 400 bad_namespace", opts.Namespace, opts.Version, err)
		}
		if _, err := c.Start(ctx, []byte("x")); !isBad(err) {
			t.Errorf("Start with %q %q: %v; want 400 bad_namespace", opts.Namespace, opts.Version, err)
		}
		if _, err := c.Poll(ctx, key); !isBad(err) {
			t.Errorf("Poll with %q %q: %v; want 400 bad_namespace", opts.Namespace, opts.Version, err)
		}
		_, errs := c.GetMany(ctx, [][]byte{{1}, {2}})
		for i, err := range errs {
			if !isBad(err) {
				t.Errorf("GetMany input %d with %q %q: %v; want 400 bad_namespace", i, opts.Namespace, opts.Version, err)
			}
		}
		if _, err := good.DeleteNamespace(ctx, opts.Namespace, opts.Version); !isBad(err) {
			t.Errorf("DeleteNamespace(%q, %q): %v; want 400 bad_namespace", opts.Namespace, opts.Version, err)
		}
	}
	// The daemon still serves a good namespace at its exact limit.
	long := newClient(t, d, false, Options{Namespace: strings.Repeat("n", coalesce.LimitNameLength)})
	if _, err := long.Get(ctx, []byte("x")); err != nil {
		t.Errorf("a namespace of %d bytes: %v", coalesce.LimitNameLength, err)
	}

	// Refused by the client, with no request.
	if _, err := New(d.url, Options{Namespace: "a\n"}); !errors.Is(err, coalesce.ErrBadNamespace) {
		t.Errorf("New with a line break in the namespace: %v", err)
	}
	if _, err := New(d.url, Options{Version: "v\x00"}); !errors.Is(err, coalesce.ErrBadNamespace) {
		t.Errorf("New with a NUL in the version: %v", err)
	}
	if _, err := good.Namespace("a\r", ""); !errors.Is(err, coalesce.ErrBadNamespace) {
		t.Errorf("Namespace with a carriage return: %v", err)
	}
	if _, err := good.DeleteNamespace(ctx, "_", ""); !errors.Is(err, coalesce.ErrBadNamespace) {
		t.Errorf(`DeleteNamespace("_"): %v; want it refused, the daemon reads "_" as the default namespace`, err)
	}
}

// DELETE /v1/namespaces/NAME: one version, every version, the default
// namespace; the results deleted are computed again, the others are not.
func TestDeleteNamespace(t *testing.T) {
	d := startDaemon(t, "durable")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := testContext(t)
			c := newClient(t, d, tr.socket, Options{})
			// Dots, a slash and a percent sign travel escaped in the path.
			name := uniqueName("del/../%x")
			v1, _ := c.Namespace(name, "v1")
			v2, _ := c.Namespace(name, "v2")
			other, _ := c.Namespace(name+"-other", "v1")
			in := input(t, "x")
			get := func(c *Client, want coalesce.Source, what string) {
				t.Helper()
				if res, err := c.Get(ctx, in); err != nil || res.Source != want {
					t.Errorf("%s: %v %v; want %v", what, res.Source, err, want)
				}
			}
			for _, c := range []*Client{v1, v2, other} {
				get(c, coalesce.Computed, "first Get")
			}

			// One version: the memory forgets it, the disk deletes its
			// one result (saved before the Get was answered).
			n, err := c.DeleteNamespace(ctx, name, "v2")
			if err != nil || n != 1 {
				t.Fatalf("DeleteNamespace(v2) = %d, %v; want 1 deleted", n, err)
			}
			get(v2, coalesce.Computed, "v2 after its deletion")
			get(v1, coalesce.Hit, "v1 after v2's deletion")

			// Every version: v1's result and v2's new one.
			n, err = c.DeleteNamespace(ctx, name, "")
			if err != nil || n != 2 {
				t.Fatalf("DeleteNamespace(every version) = %d, %v; want 2 deleted", n, err)
			}
			get(v1, coalesce.Computed, "v1 after the namespace's deletion")
			get(v2, coalesce.Computed, "v2 after the namespace's deletion")
			get(other, coalesce.Hit, "another namespace after the deletion")
			if n, err := c.DeleteNamespace(ctx, name+"-unused", ""); err != nil || n != 0 {
				t.Errorf("DeleteNamespace of a namespace never used = %d, %v; want 0", n, err)
			}

			// "" is the default namespace.
			get(c, coalesce.Computed, "default namespace")
			if n, err := c.DeleteNamespace(ctx, "", ""); err != nil || n < 1 {
				t.Errorf("DeleteNamespace of the default namespace = %d, %v; want at least 1", n, err)
			}
			get(c, coalesce.Computed, "default namespace after its deletion")
			get(other, coalesce.Hit, "a named namespace after the default's deletion")
		})
	}
}

// A daemon restarted on its disk tier answers what it computed before as
// Loaded, then from memory as a hit, in the right namespace only.
func TestLoadedAfterRestart(t *testing.T) {
	d := startDaemon(t, "durable")
	ctx := testContext(t)
	name := uniqueName("restart")
	c := newClient(t, d, false, Options{Namespace: name})
	in, gone := input(t, "kept"), input(t, "deleted")
	first, err := c.Get(ctx, in)
	if err != nil || first.Source != coalesce.Computed {
		t.Fatalf("first Get: %v %v", first.Source, err)
	}
	if _, err := c.Get(ctx, gone); err != nil {
		t.Fatal(err)
	}
	v2, _ := c.Namespace(name, "v2")
	if _, err := v2.Get(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if n, err := c.DeleteNamespace(ctx, name, "v2"); err != nil || n != 1 {
		t.Fatalf("DeleteNamespace(v2) = %d, %v; want 1", n, err)
	}

	d = restartDaemon(t, "durable")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := testContext(t)
			c := newClient(t, d, tr.socket, Options{Namespace: name})
			before, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Get(ctx, in)
			want := coalesce.Loaded
			if tr.socket {
				want = coalesce.Hit // loaded by the tcp subtest
			}
			if err != nil || res.Source != want || !bytes.Equal(res.Value, first.Value) {
				t.Fatalf("Get after the restart: %v %v %x; want %v with the value computed before", res.Source, err, res.Value, want)
			}
			if res, err := c.Get(ctx, in); err != nil || res.Source != coalesce.Hit {
				t.Errorf("second Get after the restart: %v %v; want a hit", res.Source, err)
			}
			after, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantLoaded := uint64(1)
			if tr.socket {
				wantLoaded = 0
			}
			if after.Loaded-before.Loaded != wantLoaded {
				t.Errorf("Stats.Loaded grew by %d, want %d", after.Loaded-before.Loaded, wantLoaded)
			}
		})
	}
	c = newClient(t, d, false, Options{Namespace: name})
	if res, err := c.Get(ctx, gone); err != nil || res.Source != coalesce.Loaded {
		t.Errorf("an input of the version not deleted: %v %v; want loaded", res.Source, err)
	}
	v2, _ = c.Namespace(name, "v2")
	if res, err := v2.Get(ctx, gone); err != nil || res.Source != coalesce.Computed {
		t.Errorf("an input of the deleted version: %v %v; want computed", res.Source, err)
	}
	other, _ := c.Namespace(name+"-other", "")
	if res, err := other.Get(ctx, in); err != nil || res.Source != coalesce.Computed {
		t.Errorf("the same input in another namespace: %v %v; want computed", res.Source, err)
	}
}
