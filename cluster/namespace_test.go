package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// saved stores a result for key i in namespace ns at version v through
// tr, and returns the key.
func saved(t *testing.T, tr *Tier, ns, v string, i int) coalesce.TierKey {
	t.Helper()
	k := tierKey(i)
	k.Namespace, k.Version = ns, v
	r := load(t, tr, k)
	if r.Lease == nil {
		t.Fatalf("Load of a new key = %+v, want a lease", r)
	}
	save(t, tr, k, coalesce.Outcome{Value: []byte("result"), Lease: r.Lease})
	return k
}

// waitSubscribers waits until n Tiers listen for forget messages.
func waitSubscribers(t *testing.T, tr *Tier, n int64) {
	t.Helper()
	c := raw(t, tr.opts.Addr)
	deadline := time.Now().Add(hangBound)
	for {
		m, err := c.Do(context.Background(), c.B().PubsubNumsub().Channel(tr.forgetChannel()).Build()).AsIntMap()
		if err != nil {
			t.Fatal(err)
		}
		if m[tr.forgetChannel()] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d Tiers subscribed after %v", m[tr.forgetChannel()], n, hangBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeleteNamespace: a namespace's results go (of every version, or of
// one), other namespaces' and leases stay, names with pattern characters
// match only themselves, and the other nodes are told, not the deleter.
func TestDeleteNamespace(t *testing.T) {
	o := testOptions(t, needRedis(t))
	a, b := newTier(t, o), newTier(t, o)
	type forgot struct{ ns, v string }
	told := make(chan forgot, 10)
	b.OnForget(func(ns, v string) { told <- forgot{ns, v} })
	selfTold := make(chan forgot, 10)
	a.OnForget(func(ns, v string) { selfTold <- forgot{ns, v} })
	waitSubscribers(t, a, 2)

	var keep []coalesce.TierKey
	var gone []coalesce.TierKey
	for i := range 5 {
		gone = append(gone, saved(t, a, "ns", "v1", 100+i))
		keep = append(keep, saved(t, a, "ns", "v2", 200+i))
		keep = append(keep, saved(t, a, "ns2", "v1", 300+i))
		keep = append(keep, saved(t, a, "n*", "v1", 400+i))
	}
	leased := tierKey(500)
	leased.Namespace = "ns"
	leased.Version = "v1"
	if r := load(t, a, leased); r.Lease == nil {
		t.Fatalf("Load = %+v, want a lease", r)
	}

	n, err := a.DeleteNamespace(context.Background(), "ns", "v1")
	if err != nil || n != int64(len(gone)) {
		t.Fatalf("DeleteNamespace(ns, v1) = %d, %v; want %d, nil", n, err, len(gone))
	}
	wantTold := func(want forgot) {
		t.Helper()
		select {
		case f := <-told:
			if f != want {
				t.Fatalf("b was told to forget %+v, want %+v", f, want)
			}
		case <-time.After(hangBound):
			t.Fatalf("b was not told to forget %+v", want)
		}
	}
	wantTold(forgot{"ns", "v1"})
	for _, k := range gone {
		if r := load(t, b, k); r.Found {
			t.Fatalf("%+v still found after its namespace was deleted", k)
		}
	}
	for _, k := range keep {
		if r := load(t, b, k); !r.Found {
			t.Fatalf("%+v of another namespace or version was deleted", k)
		}
	}
	if v := get(t, raw(t, o.Addr), a.keysOf(leased).result); !strings.HasPrefix(v, "L") {
		t.Fatalf("the lease taken before the deletion is now %q", v)
	}

	// Every version: the pattern character in "n*" matches only itself.
	if n, err := a.DeleteNamespace(context.Background(), "n*", ""); err != nil || n != 5 {
		t.Fatalf("DeleteNamespace(n*) = %d, %v; want 5, nil", n, err)
	}
	wantTold(forgot{"n*", ""})
	for _, k := range keep {
		if r := load(t, b, k); r.Found != (k.Namespace != "n*") {
			t.Fatalf("%+v: found %v after deleting namespace n*", k, r.Found)
		}
	}
	if s := a.Stats(); s.NamespacesDeleted != 2 || s.NamespacesForgotten != 0 {
		t.Errorf("a's stats %+v", s)
	}
	if s := b.Stats(); s.NamespacesForgotten != 2 {
		t.Errorf("b's stats %+v", s)
	}
	select {
	case f := <-selfTold:
		t.Fatalf("the deleting node was told to forget %+v", f)
	default:
	}
}

// TestDeleteNamespaceUnavailable: with Redis gone, DeleteNamespace fails
// within the Timeout with ErrUnavailable, and after Close with ErrClosed.
func TestDeleteNamespaceUnavailable(t *testing.T) {
	r := ownRedis(t)
	a := newTier(t, testOptions(t, r.addr))
	a.OnForget(func(string, string) {})
	r.kill()
	start := time.Now()
	if _, err := a.DeleteNamespace(context.Background(), "ns", ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("DeleteNamespace with Redis down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > hangBound {
		t.Fatalf("DeleteNamespace with Redis down took %v", d)
	}
	a.Close()
	if _, err := a.DeleteNamespace(context.Background(), "ns", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("DeleteNamespace after Close = %v, want ErrClosed", err)
	}
}
