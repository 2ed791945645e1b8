package cluster

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// TestRedisKilled: with Redis gone mid-wait, a waiting Load and the next
// ones fail within Timeout (fail-open: an error; FailClosed: TierResult.Err),
// and once Redis is back the Tier works again without being remade.
func TestRedisKilled(t *testing.T) {
	r := ownRedis(t)
	o := testOptions(t, r.addr)
	o.Timeout = 200 * time.Millisecond
	o.PollInterval = 10 * time.Second // the connection's loss must wake the waiter
	a, b := newTier(t, o), newTier(t, o)
	fc := o
	fc.FailClosed = true
	closed := newTier(t, fc)

	k := tierKey(1)
	load(t, a, k)
	done := make(chan error, 1)
	go func() { _, err := b.Load(context.Background(), k); done <- err }()
	time.Sleep(200 * time.Millisecond)
	r.kill()
	killed := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("waiting Load = %v, want ErrUnavailable", err)
		}
		if d := time.Since(killed); d > hangBound {
			t.Errorf("waiting Load failed %v after Redis died", d)
		}
	case <-time.After(hangBound):
		t.Fatal("a waiting Load hung after Redis died")
	}
	for i := range 3 {
		start := time.Now()
		if _, err := a.Load(context.Background(), tierKey(10+i)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Load with Redis down = %v", err)
		}
		rc, err := closed.Load(context.Background(), tierKey(10+i))
		if err != nil || !errors.Is(rc.Err, ErrUnavailable) {
			t.Errorf("FailClosed Load with Redis down = %+v, %v", rc, err)
		}
		if d := time.Since(start); d > hangBound {
			t.Errorf("two Loads took %v with Redis down", d)
		}
	}
	if err := a.Save(context.Background(), k, coalesce.Outcome{Value: []byte("x")}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Save with Redis down = %v", err)
	}
	if a.Stats().RedisErrors == 0 {
		t.Error("no Redis errors counted")
	}

	r.restart(t)
	waitUp(t, a)
	waitUp(t, b)
	ra := load(t, a, tierKey(20))
	save(t, a, tierKey(20), coalesce.Outcome{Value: []byte("back"), Lease: ra.Lease})
	if rb := load(t, b, tierKey(20)); string(rb.Value) != "back" {
		t.Errorf("after the restart b got %+v", rb)
	}
}

// waitUp waits until tr's Loads succeed again.
func waitUp(t *testing.T, tr *Tier) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := tr.Load(context.Background(), tierKey(999))
		if err == nil {
			tr.Save(context.Background(), tierKey(999), coalesce.Outcome{Err: context.Canceled, Lease: r.Lease})
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Tier did not reconnect: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisPaused: a Redis that stops answering (SIGSTOP) on an open
// connection fails Loads within Timeout, and they succeed again after.
func TestRedisPaused(t *testing.T) {
	r := ownRedis(t)
	o := testOptions(t, r.addr)
	o.Timeout = 200 * time.Millisecond
	a := newTier(t, o)
	load(t, a, tierKey(1))
	r.s.Signal(syscall.SIGSTOP)
	defer r.s.Signal(syscall.SIGCONT)
	start := time.Now()
	_, err := a.Load(context.Background(), tierKey(2))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Load with Redis paused = %v", err)
	}
	if d := time.Since(start); d > hangBound {
		t.Errorf("Load took %v with Redis paused; Timeout is %v", d, o.Timeout)
	}
	r.s.Signal(syscall.SIGCONT)
	waitUp(t, a)
}

// TestGroupWithoutRedis: a Group whose tier lost Redis serves on: it
// computes locally, counts the tier's errors, and coalesces through Redis
// again once it is back.
func TestGroupWithoutRedis(t *testing.T) {
	r := ownRedis(t)
	o := testOptions(t, r.addr)
	o.Timeout = 200 * time.Millisecond
	tier := newTier(t, o)
	secret, err := tier.SharedSecret(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		return append([]byte("v:"), in...), nil
	}, coalesce.Options{Workers: 2, Tiers: []coalesce.Tier{tier}, Secret: secret, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if res, err := g.Get(ctx, []byte("a")); err != nil || res.Source != coalesce.Computed {
		t.Fatalf("Get = %+v, %v", res, err)
	}
	r.kill()
	start := time.Now()
	res, err := g.Get(ctx, []byte("b"))
	if err != nil || string(res.Value) != "v:b" {
		t.Fatalf("Get with Redis down = %+v, %v", res, err)
	}
	if d := time.Since(start); d > hangBound {
		t.Errorf("Get took %v with Redis down", d)
	}
	if g.Stats().TierErrors == 0 {
		t.Error("the Group counted no tier error")
	}
	r.restart(t)
	waitUp(t, tier)
	if _, err := g.Get(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	// A second Group (another node, in effect) finds c in Redis.
	g2, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		return nil, errors.New("computed twice")
	}, coalesce.Options{Workers: 1, Tiers: []coalesce.Tier{tier}, Secret: secret, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if res, err := g2.Get(ctx, []byte("c")); err != nil || res.Source != coalesce.Loaded || string(res.Value) != "v:c" {
		t.Errorf("second Group's Get = %+v, %v", res, err)
	}
}
