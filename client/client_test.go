package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// newClient returns a client for d over TCP, or over its Unix socket.
func newClient(t *testing.T, d *daemon, socket bool, opts Options) *Client {
	t.Helper()
	base := d.url
	if socket {
		opts.SocketPath, base = d.socket, ""
	}
	c, err := New(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// input returns an input no other test asks for, so that its first Get
// computes it.
func input(t *testing.T, s string) []byte {
	return []byte(fmt.Sprintf("%s/%s/%d", t.Name(), s, time.Now().UnixNano()))
}

// testContext is bounded, so that a daemon that never answers fails the
// test instead of hanging it.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var transports = []struct {
	name   string
	socket bool
}{{"tcp", false}, {"unix", true}}

func TestGetComputesThenHits(t *testing.T) {
	d := startDaemon(t, "fast")
	in := input(t, "x")
	var first []byte
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := newClient(t, d, tr.socket, Options{})
			ctx := testContext(t)
			res, err := c.Get(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = res.Value
				if res.Source != coalesce.Computed {
					t.Errorf("first Get: Source %v, want computed", res.Source)
				}
			} else if res.Source != coalesce.Hit {
				t.Errorf("Get after the other transport's: Source %v, want hit", res.Source)
			}
			if len(res.Value) != 128 || !bytes.Equal(res.Value, first) {
				t.Errorf("value %x, want the 128 bytes %x", res.Value, first)
			}
			again, err := c.Get(ctx, in)
			if err != nil || again.Source != coalesce.Hit || !bytes.Equal(again.Value, first) {
				t.Errorf("second Get: %v %v %x; want a hit with the same value", again.Source, err, again.Value)
			}
		})
	}
}

// A connection the daemon closed while idle is replaced, and the request
// sent again, without the caller seeing an error.
func TestStaleConnection(t *testing.T) {
	d := startDaemon(t, "fast") // closes connections idle for 250 ms
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := newClient(t, d, tr.socket, Options{})
			ctx := testContext(t)
			in := input(t, "x")
			for i := range 3 {
				if _, err := c.Get(ctx, in); err != nil {
					t.Fatalf("Get %d: %v", i, err)
				}
				if _, err := c.GetMany(ctx, [][]byte{in}); err[0] != nil {
					t.Fatalf("GetMany %d: %v", i, err[0])
				}
				if _, err := c.DeleteNamespace(ctx, uniqueName("stale"), ""); err != nil {
					t.Fatalf("DeleteNamespace %d: %v", i, err)
				}
				time.Sleep(400 * time.Millisecond) // the daemon closes the idle connection
			}
		})
	}
}

func TestGetEmptyInput(t *testing.T) {
	c := newClient(t, startDaemon(t, "fast"), false, Options{})
	res, err := c.Get(testContext(t), nil)
	if err != nil || len(res.Value) != 128 {
		t.Fatalf("Get(nil) = %x, %v; want a 128-byte result", res.Value, err)
	}
}

// Fifty concurrent requests for one uncached input make one computation;
// every caller gets its bytes.
func TestGetConcurrentCollapses(t *testing.T) {
	d := startDaemon(t, "slow")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := newClient(t, d, tr.socket, Options{})
			ctx := testContext(t)
			before, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			in := input(t, "one")
			const n = 50
			results := make([]coalesce.Result, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { results[i], errs[i] = c.Get(ctx, in) })
			}
			wg.Wait()
			computed := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("Get %d: %v", i, errs[i])
				}
				if !bytes.Equal(results[i].Value, results[0].Value) {
					t.Fatalf("Get %d: value %x, Get 0: %x", i, results[i].Value, results[0].Value)
				}
				if results[i].Source == coalesce.Computed {
					computed++
				}
			}
			after, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := after.Computed - before.Computed; got != 1 || computed != 1 {
				t.Errorf("%d computations, %d results with Source computed; want 1 and 1", got, computed)
			}
			if after.Requests-before.Requests != n {
				t.Errorf("%d requests counted, want %d", after.Requests-before.Requests, n)
			}
		})
	}
}

func TestStartPollWait(t *testing.T) {
	d := startDaemon(t, "slow")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := newClient(t, d, tr.socket, Options{})
			ctx := testContext(t)
			in := input(t, "async")
			p, err := c.Start(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Started {
				t.Error("the first Start of an input: Started false")
			}
			// The computation takes 1 s: a second Start joins it.
			p2, err := c.Start(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if p2.Started || p2.Key != p.Key {
				t.Errorf("second Start: Started %v, key %v; want false and %v", p2.Started, p2.Key, p.Key)
			}
			if _, err := c.Poll(ctx, p.Key); !errors.Is(err, coalesce.ErrPending) {
				t.Errorf("Poll while computing: %v, want ErrPending", err)
			}
			res, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != coalesce.Computed || len(res.Value) != 128 {
				t.Errorf("Wait: Source %v, %d bytes; want computed, 128", res.Source, len(res.Value))
			}
			res2, err := p2.Wait(ctx)
			if err != nil || res2.Source != coalesce.Joined || !bytes.Equal(res2.Value, res.Value) {
				t.Errorf("the joiner's Wait: %v %v; want joined, the same value", res2.Source, err)
			}
			polled, err := c.Poll(ctx, p.Key)
			if err != nil || polled.Source != coalesce.Hit || !bytes.Equal(polled.Value, res.Value) {
				t.Errorf("Poll once done: %v %v; want a hit with the value", polled.Source, err)
			}
			// Now cached: Start answers with the result.
			p3, err := c.Start(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p3.Poll(ctx)
			if err != nil || got.Source != coalesce.Hit || p3.Started || p3.Key != p.Key || !bytes.Equal(got.Value, res.Value) {
				t.Errorf("Start of a cached input: %v %v started=%v key=%v; want a hit, the value, the key", got.Source, err, p3.Started, p3.Key)
			}
			blocking, err := c.Get(ctx, in)
			if err != nil || !bytes.Equal(blocking.Value, res.Value) {
				t.Errorf("Get: %v, want the polled value", err)
			}
		})
	}
}

func TestPollUnknownKey(t *testing.T) {
	c := newClient(t, startDaemon(t, "fast"), false, Options{})
	key, err := coalesce.ParseKey(strings.Repeat("0", 32))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Poll(testContext(t), key)
	var e *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code != "not_found" {
		t.Fatalf("Poll of an unknown key: %v; want ErrNotFound, a 404", err)
	}
}

func TestGetMany(t *testing.T) {
	d := startDaemon(t, "fast")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			// A batch size of 2 sends the 5 inputs in 3 requests.
			c := newClient(t, d, tr.socket, Options{BatchSize: 2})
			ctx := testContext(t)
			cached := input(t, "cached")
			want, err := c.Get(ctx, cached)
			if err != nil {
				t.Fatal(err)
			}
			a, b := input(t, "a"), input(t, "b")
			inputs := [][]byte{a, cached, b, {}, a}
			results, errs := c.GetMany(ctx, inputs)
			if len(results) != len(inputs) || len(errs) != len(inputs) {
				t.Fatalf("%d results and %d errors for %d inputs", len(results), len(errs), len(inputs))
			}
			for i, in := range inputs {
				if errs[i] != nil {
					t.Fatalf("input %d: %v", i, errs[i])
				}
				one, err := c.Get(ctx, in)
				if err != nil || !bytes.Equal(one.Value, results[i].Value) || one.Source != coalesce.Hit {
					t.Errorf("input %d: batch value %x, Get %x (%v, %v)", i, results[i].Value, one.Value, one.Source, err)
				}
			}
			if results[1].Source != coalesce.Hit || !bytes.Equal(results[1].Value, want.Value) {
				t.Errorf("the cached input: %v %x, want a hit with %x", results[1].Source, results[1].Value, want.Value)
			}
			if results[0].Source != coalesce.Computed {
				t.Errorf("a new input: Source %v, want computed", results[0].Source)
			}
			if r, e := c.GetMany(ctx, nil); len(r) != 0 || len(e) != 0 {
				t.Errorf("GetMany(nil) = %d results, %d errors; want none", len(r), len(e))
			}
		})
	}
}

// Each input of a batch fails on its own; a batch over the daemon's limit
// fails as a whole.
func TestGetManyErrors(t *testing.T) {
	d := startDaemon(t, "strict")
	c := newClient(t, d, false, Options{Token: d.token, BatchSize: 10})
	ctx := testContext(t)
	results, errs := c.GetMany(ctx, [][]byte{input(t, "a"), input(t, "b")})
	for i, err := range errs {
		var e *Error
		if !errors.Is(err, coalesce.ErrTimeout) || !errors.As(err, &e) || e.Code != "timeout" || e.Status != http.StatusGatewayTimeout {
			t.Errorf("input %d: %v, want ErrTimeout as a 504 timeout", i, err)
		}
		if results[i].Value != nil {
			t.Errorf("input %d failed but has a value", i)
		}
	}
	five := [][]byte{{1}, {2}, {3}, {4}, {5}} // the daemon's --max-batch is 4
	_, errs = c.GetMany(ctx, five)
	for i, err := range errs {
		var e *Error
		if !errors.As(err, &e) || e.Code != "batch_too_large" || e.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("input %d of a batch over the limit: %v, want 413 batch_too_large", i, err)
		}
	}
}

func TestToken(t *testing.T) {
	d := startDaemon(t, "strict")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := testContext(t)
			for _, token := range []string{"", "wrong"} {
				c := newClient(t, d, tr.socket, Options{Token: token})
				_, err := c.Get(ctx, []byte("x"))
				var e *Error
				if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
					t.Errorf("Get with token %q: %v, want ErrUnauthorized", token, err)
				}
				if _, err := c.Stats(ctx); !errors.Is(err, ErrUnauthorized) {
					t.Errorf("Stats with token %q: %v, want ErrUnauthorized", token, err)
				}
				if _, err := c.Start(ctx, []byte("x")); !errors.Is(err, ErrUnauthorized) {
					t.Errorf("Start with token %q: %v, want ErrUnauthorized", token, err)
				}
				_, errs := c.GetMany(ctx, [][]byte{{1}, {2}})
				for i, err := range errs {
					if !errors.Is(err, ErrUnauthorized) {
						t.Errorf("GetMany input %d with token %q: %v, want ErrUnauthorized", i, token, err)
					}
				}
			}
			c := newClient(t, d, tr.socket, Options{Token: d.token})
			if _, err := c.Stats(ctx); err != nil {
				t.Errorf("Stats with the token: %v", err)
			}
		})
	}
}

func TestInputTooLarge(t *testing.T) {
	d := startDaemon(t, "strict")
	c := newClient(t, d, false, Options{Token: d.token})
	ctx := testContext(t)
	// The daemon's --max-input is 64. It answers a body far over the limit
	// before reading it, and closes the connection: the 413 still arrives.
	for _, size := range []int{65, 8 << 20} {
		_, err := c.Get(ctx, bytes.Repeat([]byte("x"), size))
		var e *Error
		if !errors.Is(err, coalesce.ErrInputTooLarge) || !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("Get of %d bytes: %v, want ErrInputTooLarge as a 413", size, err)
		}
	}
	big := bytes.Repeat([]byte("x"), 65)
	if _, err := c.Start(ctx, big); !errors.Is(err, coalesce.ErrInputTooLarge) {
		t.Errorf("Start: %v, want ErrInputTooLarge", err)
	}
}

func TestTimeout(t *testing.T) {
	d := startDaemon(t, "strict")
	c := newClient(t, d, true, Options{Token: d.token})
	ctx := testContext(t)
	_, err := c.Get(ctx, input(t, "blocking"))
	if !errors.Is(err, coalesce.ErrTimeout) {
		t.Errorf("Get: %v, want ErrTimeout", err)
	}
	// A respond-async computation that fails: the poll finds its error.
	p, err := c.Start(ctx, input(t, "async"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); !errors.Is(err, coalesce.ErrTimeout) {
		t.Errorf("Wait: %v, want ErrTimeout", err)
	}
}

func TestOverloaded(t *testing.T) {
	d := startDaemon(t, "tight") // one worker, a queue of one, one waiter
	c := newClient(t, d, false, Options{})
	ctx := testContext(t)

	// One waiter blocks; the next blocking request is refused.
	bctx, cancel := context.WithCancel(ctx)
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Get(bctx, input(t, "blocked"))
		blocked <- err
	}()
	waitStats(t, c, func(s Stats) bool { return s.HTTPWaiters == 1 && s.InFlight == 1 && s.Queued == 0 })
	_, err := c.Get(ctx, input(t, "refused"))
	var e *Error
	if !errors.Is(err, coalesce.ErrOverloaded) || !errors.As(err, &e) || e.Code != "too_many_waiters" || e.RetryAfter != time.Second {
		t.Errorf("Get beyond --max-waiters: %v, want ErrOverloaded, too_many_waiters, Retry-After 1s", err)
	}

	// The worker is busy; one input fills the queue, the next is refused.
	if _, err := c.Start(ctx, input(t, "queued")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Start(ctx, input(t, "overflow"))
	if !errors.Is(err, coalesce.ErrOverloaded) || !errors.As(err, &e) || e.Code != "overloaded" || e.RetryAfter != time.Second {
		t.Errorf("Start beyond --queue: %v, want ErrOverloaded, overloaded, Retry-After 1s", err)
	}
	cancel()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled Get: %v, want context.Canceled", err)
	}
}

// A cancelled Get frees its wait on the daemon at once, and the
// computation is abandoned when it was its last waiter.
func TestContextCancel(t *testing.T) {
	d := startDaemon(t, "slow")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := newClient(t, d, tr.socket, Options{})
			ctx := testContext(t)
			waitStats(t, c, func(s Stats) bool { return s.HTTPWaiters == 0 && s.InFlight == 0 })
			before, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := c.Get(gctx, input(t, "cancelled"))
				done <- err
			}()
			waitStats(t, c, func(s Stats) bool { return s.HTTPWaiters == 1 && s.Waiters == 1 })
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Get: %v, want context.Canceled", err)
			}
			waitStats(t, c, func(s Stats) bool {
				return s.HTTPWaiters == 0 && s.Waiters == 0 && s.Abandoned == before.Abandoned+1
			})
			// A Wait cut short returns the context's error.
			p, err := c.Start(ctx, input(t, "async"))
			if err != nil {
				t.Fatal(err)
			}
			wctx, wcancel := context.WithCancel(ctx)
			wcancel()
			if _, err := p.Wait(wctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Wait with a cancelled context: %v, want context.Canceled", err)
			}
			if _, err := p.Wait(ctx); err != nil {
				t.Errorf("Wait again: %v", err)
			}
		})
	}
}

// waitStats polls the daemon's stats until ok holds, failing the test
// after 10 s.
func waitStats(t *testing.T, c *Client, ok func(Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last Stats
	for {
		s, err := c.Stats(ctx)
		if err == nil && ok(s) {
			return
		}
		if err == nil {
			last = s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the daemon's stats did not reach the expected state within 10 s; last: %+v (error %v)", last, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestStats(t *testing.T) {
	c := newClient(t, startDaemon(t, "fast"), true, Options{})
	ctx := testContext(t)
	if _, err := c.Get(ctx, input(t, "x")); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests == 0 || s.Computed == 0 || s.Entries == 0 || s.CacheBytes == 0 || s.ComputeTime.Count == 0 {
		t.Errorf("stats after a computation: %+v", s)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		base string
		opts Options
	}{
		{"", Options{}},
		{"127.0.0.1:7700", Options{}},
		{"ftp://127.0.0.1:7700", Options{}},
		{"http://127.0.0.1:7700?x=1", Options{}},
		{"http://127.0.0.1:7700", Options{HTTPClient: http.DefaultClient, SocketPath: "/tmp/s"}},
		{"http://127.0.0.1:7700", Options{BatchSize: -1}},
		{"http://127.0.0.1:7700", Options{Token: "abc\n"}},
	} {
		if _, err := New(tc.base, tc.opts); err == nil {
			t.Errorf("New(%q, %+v) succeeded", tc.base, tc.opts)
		}
	}
}

// A client pointed at no daemon fails with a transport error, not a hang.
func TestNoDaemon(t *testing.T) {
	c, err := New("", Options{SocketPath: tmpDir + "/nothing.sock"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var e *Error
	if _, err := c.Get(testContext(t), []byte("x")); err == nil || errors.As(err, &e) {
		t.Errorf("Get with no daemon: %v, want a transport error", err)
	}
}
