package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coalesce-go/coalesce"
)

// TestPeek: Peek reads without taking part: nothing and a lease are not
// found and nothing is written; a result is found; a kept error is
// returned as the result's Err.
func TestPeek(t *testing.T) {
	o := testOptions(t, needRedis(t))
	a, b := newTier(t, o), newTier(t, o)
	c := raw(t, o.Addr)
	ctx := context.Background()
	k := tierKey(600)
	if r, err := b.Peek(ctx, k); err != nil || r.Found || r.Err != nil || r.Lease != nil {
		t.Fatalf("Peek of nothing = %+v, %v", r, err)
	}
	if v := get(t, c, b.keysOf(k).result); v != "<nil>" {
		t.Fatalf("Peek wrote %q", v)
	}
	lr := load(t, a, k)
	if r, err := b.Peek(ctx, k); err != nil || r.Found || r.Err != nil || r.Lease != nil {
		t.Fatalf("Peek of a lease = %+v, %v", r, err)
	}
	if v := get(t, c, b.keysOf(k).result); !strings.HasPrefix(v, "L") {
		t.Fatalf("after Peek the lease is %q", v)
	}
	save(t, a, k, coalesce.Outcome{Value: []byte("result"), Lease: lr.Lease})
	if r, err := b.Peek(ctx, k); err != nil || !r.Found || string(r.Value) != "result" {
		t.Fatalf("Peek of a result = %+v, %v", r, err)
	}
	k2 := tierKey(601)
	lr = load(t, a, k2)
	save(t, a, k2, coalesce.Outcome{Err: errors.New("boom"), Lease: lr.Lease})
	r, err := b.Peek(ctx, k2)
	var re *RemoteError
	if err != nil || r.Found || !errors.As(r.Err, &re) || re.Node != a.Node() {
		t.Fatalf("Peek of a kept error = %+v, %v", r, err)
	}
}

// TestPeekUnavailable: with Redis gone, Peek fails with ErrUnavailable.
func TestPeekUnavailable(t *testing.T) {
	r := ownRedis(t)
	a := newTier(t, testOptions(t, r.addr))
	r.kill()
	if _, err := a.Peek(context.Background(), tierKey(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Peek with Redis down = %v", err)
	}
}
