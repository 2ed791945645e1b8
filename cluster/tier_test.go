package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/redis/rueidis"
)

func tierKey(i int) coalesce.TierKey {
	var b [16]byte
	b[0], b[1], b[15] = byte(i>>8), byte(i), byte(i)
	return coalesce.TierKey{Namespace: "ns", Version: "v1", Key: coalesce.KeyFromBytes(b)}
}

func load(t *testing.T, tr *Tier, k coalesce.TierKey) coalesce.TierResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := tr.Load(ctx, k)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func save(t *testing.T, tr *Tier, k coalesce.TierKey, out coalesce.Outcome) {
	t.Helper()
	if err := tr.Save(context.Background(), k, out); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// raw is a plain client on the test's Redis, to look behind the Tier.
func raw(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func get(t *testing.T, c rueidis.Client, key string) string {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "<nil>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLeaseThenHit: the first Load takes the lease, its Save stores the
// result, and the next Load (any node) is a remote hit.
func TestLeaseThenHit(t *testing.T) {
	addr := needRedis(t)
	o := testOptions(t, addr)
	a, b := newTier(t, o), newTier(t, o)
	k := tierKey(1)
	r := load(t, a, k)
	if r.Found || r.Err != nil || r.Lease == nil {
		t.Fatalf("first Load = %+v, want a lease", r)
	}
	l := r.Lease.(*lease)
	if !strings.HasPrefix(l.value, "L") || !strings.Contains(l.value, ":"+a.Node()+":") {
		t.Fatalf("lease %q does not name node %s", l.value, a.Node())
	}
	save(t, a, k, coalesce.Outcome{Value: []byte("result"), Lease: r.Lease})
	r = load(t, b, k)
	if !r.Found || string(r.Value) != "result" || !r.Expires.IsZero() {
		t.Fatalf("second Load = %+v, want the result without expiry", r)
	}
	if s := a.Stats(); s.LeasesTaken != 1 || s.Writes != 1 {
		t.Errorf("a's stats %+v", s)
	}
	if s := b.Stats(); s.RemoteHits != 1 {
		t.Errorf("b's stats %+v", s)
	}
}

// TestFencingTokensIncrease: each lease on an input draws a larger token.
func TestFencingTokensIncrease(t *testing.T) {
	a := newTier(t, testOptions(t, needRedis(t)))
	k := tierKey(2)
	prev := ""
	for i := 0; i < 3; i++ {
		r := load(t, a, k)
		l := r.Lease.(*lease)
		if prev != "" && tokenOf(l.value) <= tokenOf(prev) {
			t.Fatalf("token of %q not above %q", l.value, prev)
		}
		prev = l.value
		save(t, a, k, coalesce.Outcome{Err: context.Canceled, Lease: r.Lease})
	}
}

func tokenOf(lease string) int {
	n := 0
	for _, c := range lease[1:strings.IndexByte(lease, ':')] {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestJoinWokenByInvalidation: a node waiting for another's lease gets
// the result as soon as it is written, long before its next poll.
func TestJoinWokenByInvalidation(t *testing.T) {
	o := testOptions(t, needRedis(t))
	o.PollInterval = time.Minute // only an invalidation wakes b within hangBound
	a, b := newTier(t, o), newTier(t, o)
	k := tierKey(3)
	r := load(t, a, k)
	done := make(chan coalesce.TierResult, 1)
	go func() { done <- load(t, b, k) }()
	time.Sleep(300 * time.Millisecond) // b is waiting
	select {
	case r := <-done:
		t.Fatalf("b's Load returned %+v while a held the lease", r)
	default:
	}
	start := time.Now()
	save(t, a, k, coalesce.Outcome{Value: []byte("v"), Lease: r.Lease})
	select {
	case r := <-done:
		if !r.Found || string(r.Value) != "v" {
			t.Fatalf("b's Load = %+v", r)
		}
		if d := time.Since(start); d > hangBound {
			t.Errorf("b woke %v after the write; an invalidation should wake it at once", d)
		}
	case <-time.After(hangBound):
		t.Fatal("b was not woken by the write")
	}
	if s := b.Stats(); s.RemoteJoins != 1 || s.Wakeups < 1 {
		t.Errorf("b's stats %+v", s)
	}
}

// TestDeadOwnerStolen: a waiter that finds the owner's liveness gone
// takes the lease over, and the old owner's late write is then rejected.
func TestDeadOwnerStolen(t *testing.T) {
	addr := needRedis(t)
	o := testOptions(t, addr)
	a, b := newTier(t, o), newTier(t, o)
	c := raw(t, addr)
	k := tierKey(4)
	ra := load(t, a, k)
	// a "dies": its refresh stops being seen (its key is deleted under it
	// at each refresh; Close would also release nothing of a's leases).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c.Do(context.Background(), c.B().Del().Key(a.liveKey(a.Node())).Build())
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	rb := load(t, b, k)
	close(stop)
	wg.Wait()
	if rb.Lease == nil {
		t.Fatalf("b's Load = %+v, want the stolen lease", rb)
	}
	if s := b.Stats(); s.LeasesStolen != 1 || s.LeasesTaken != 1 {
		t.Errorf("b's stats %+v", s)
	}
	save(t, b, k, coalesce.Outcome{Value: []byte("from b"), Lease: rb.Lease})
	save(t, a, k, coalesce.Outcome{Value: []byte("from a"), Lease: ra.Lease})
	if s := a.Stats(); s.LeasesLost != 1 || s.Writes != 0 {
		t.Errorf("a's stats %+v: its late write should be fenced out", s)
	}
	if v := get(t, c, a.keysOf(k).result); v != "Vfrom b" {
		t.Errorf("the key holds %q, want b's result", v)
	}
	// A fenced-out owner's error and release do not disturb the result either.
	save(t, a, k, coalesce.Outcome{Err: errors.New("late"), Lease: ra.Lease})
	save(t, a, k, coalesce.Outcome{Err: context.Canceled, Lease: ra.Lease})
	if v := get(t, c, a.keysOf(k).result); v != "Vfrom b" {
		t.Errorf("the key holds %q, want b's result", v)
	}
}

// TestStealRace: of two waiters that find the same owner dead, one takes
// the lease and the other waits for it.
func TestStealRace(t *testing.T) {
	addr := needRedis(t)
	o := testOptions(t, addr)
	a := newTier(t, o)
	k := tierKey(5)
	c := raw(t, addr)
	keys := a.keysOf(k)
	// A lease of a node that never lived.
	c.Do(context.Background(), c.B().Set().Key(keys.result).Value("L1:ghost:1").Build())
	var ws []*Tier
	for range 4 {
		ws = append(ws, newTier(t, o))
	}
	results := make(chan coalesce.TierResult, len(ws))
	for _, w := range ws {
		go func() { results <- load(t, w, k) }()
	}
	var leases []*lease
	deadline := time.After(hangBound)
	for len(leases) == 0 {
		select {
		case r := <-results:
			if r.Lease == nil {
				t.Fatalf("a waiter got %+v before anyone computed", r)
			}
			leases = append(leases, r.Lease.(*lease))
		case <-deadline:
			t.Fatal("nobody stole the ghost's lease")
		}
	}
	// The winner computes; the others must join it.
	var winner *Tier
	for _, w := range ws {
		if strings.Contains(leases[0].value, ":"+w.Node()+":") {
			winner = w
		}
	}
	save(t, winner, k, coalesce.Outcome{Value: []byte("x"), Lease: leases[0]})
	for range len(ws) - 1 {
		if r := <-results; !r.Found || string(r.Value) != "x" {
			t.Fatalf("a loser got %+v", r)
		}
	}
	var stolen uint64
	for _, w := range ws {
		stolen += w.Stats().LeasesStolen
	}
	if stolen != 1 {
		t.Errorf("%d steals, want 1", stolen)
	}
}

// TestNegativeEntry: a failed computation's error reaches the other
// nodes' Loads for NegativeTTL, and then the input is computed again.
func TestNegativeEntry(t *testing.T) {
	o := testOptions(t, needRedis(t))
	o.NegativeTTL = 400 * time.Millisecond
	a, b := newTier(t, o), newTier(t, o)
	for i, tc := range []struct {
		err     error
		timeout bool
	}{
		{errors.New("upstream said no"), false},
		{coalesce.ErrTimeout, true},
		{&coalesce.PanicError{Value: "boom"}, false},
	} {
		k := tierKey(10 + i)
		r := load(t, a, k)
		// b waits while a computes, and gets the error when a fails.
		done := make(chan coalesce.TierResult, 1)
		go func() { done <- load(t, b, k) }()
		time.Sleep(100 * time.Millisecond)
		save(t, a, k, coalesce.Outcome{Err: tc.err, Lease: r.Lease})
		r = <-done
		var re *RemoteError
		if !errors.As(r.Err, &re) || re.Node != a.Node() || !strings.Contains(re.Message, tc.err.Error()) {
			t.Fatalf("%d: b's Load = %+v, want a's error", i, r)
		}
		if got := errors.Is(r.Err, coalesce.ErrTimeout); got != tc.timeout {
			t.Errorf("%d: errors.Is(%v, ErrTimeout) = %v", i, r.Err, got)
		}
		// Later Loads get it too, until it expires.
		if r := load(t, b, k); r.Err == nil {
			t.Fatalf("%d: second Load = %+v, want the error", i, r)
		}
		time.Sleep(o.NegativeTTL + 100*time.Millisecond)
		if r := load(t, b, k); r.Lease == nil {
			t.Fatalf("%d: Load after NegativeTTL = %+v, want a lease", i, r)
		}
	}
	if s := b.Stats(); s.NegativeHits != 6 {
		t.Errorf("b's stats %+v", s)
	}
}

// TestReleaseOnCancel: a cancelled computation gives its lease back at
// once, and a waiting node takes it without waiting for any TTL.
func TestReleaseOnCancel(t *testing.T) {
	o := testOptions(t, needRedis(t))
	o.PollInterval = 5 * time.Second // the release must wake b, not a poll
	a, b := newTier(t, o), newTier(t, o)
	k := tierKey(20)
	r := load(t, a, k)
	done := make(chan coalesce.TierResult, 1)
	go func() { done <- load(t, b, k) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	save(t, a, k, coalesce.Outcome{Err: context.Canceled, Lease: r.Lease})
	select {
	case r := <-done:
		if r.Lease == nil {
			t.Fatalf("b's Load = %+v, want the released lease", r)
		}
		if d := time.Since(start); d > hangBound {
			t.Errorf("b took the lease %v after the release", d)
		}
	case <-time.After(hangBound):
		t.Fatal("b did not take the released lease")
	}
	if s := a.Stats(); s.LeasesReleased != 1 {
		t.Errorf("a's stats %+v", s)
	}
}

// TestLoadCancelled: a waiting Load returns when its context ends.
func TestLoadCancelled(t *testing.T) {
	o := testOptions(t, needRedis(t))
	a, b := newTier(t, o), newTier(t, o)
	k := tierKey(21)
	load(t, a, k)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Load(ctx, k)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load = %v, want the context's error", err)
	}
	if d := time.Since(start); d > hangBound {
		t.Errorf("Load returned %v after its context ended", d)
	}
	if s := b.Stats(); s.RedisErrors != 0 {
		t.Errorf("a cancelled Load counted as a Redis error: %+v", s)
	}
}

// TestExpiresAndPromotion: a result's TTL comes back with it; a result
// promoted without a lease is stored unless a result is there already.
func TestExpiresAndPromotion(t *testing.T) {
	addr := needRedis(t)
	o := testOptions(t, addr)
	a := newTier(t, o)
	k := tierKey(30)
	r := load(t, a, k)
	exp := time.Now().Add(time.Minute)
	save(t, a, k, coalesce.Outcome{Value: []byte("ttl"), Expires: exp, Lease: r.Lease})
	r = load(t, a, k)
	if !r.Found || r.Expires.Before(exp.Add(-2*time.Second)) || r.Expires.After(exp.Add(time.Second)) {
		t.Fatalf("Load = %+v, want Expires near %v", r, exp)
	}
	save(t, a, k, coalesce.Outcome{Value: []byte("promoted")})
	if r := load(t, a, k); string(r.Value) != "ttl" {
		t.Errorf("a promotion overwrote a result: %q", r.Value)
	}
	k2 := tierKey(31)
	save(t, a, k2, coalesce.Outcome{Value: []byte("promoted")})
	if r := load(t, a, k2); string(r.Value) != "promoted" {
		t.Errorf("promotion to a free key: %+v", r)
	}
	// An error without a lease (a farther tier's) is not this node's to record.
	save(t, a, tierKey(33), coalesce.Outcome{Err: errors.New("elsewhere")})
	if v := get(t, raw(t, addr), a.keysOf(tierKey(33)).result); v != "<nil>" {
		t.Errorf("an error without a lease was stored: %q", v)
	}
	// Already stale: the lease is released, nothing stored.
	k3 := tierKey(32)
	r = load(t, a, k3)
	save(t, a, k3, coalesce.Outcome{Value: []byte("stale"), Expires: time.Now().Add(-time.Second), Lease: r.Lease})
	if v := get(t, raw(t, addr), a.keysOf(k3).result); v != "<nil>" {
		t.Errorf("a stale result was stored: %q", v)
	}
}

// TestDelete: results and errors are deleted, leases are not.
func TestDelete(t *testing.T) {
	a := newTier(t, testOptions(t, needRedis(t)))
	k := tierKey(40)
	r := load(t, a, k)
	if ok, err := a.Delete(k); ok || err != nil {
		t.Fatalf("Delete of a lease = %v, %v", ok, err)
	}
	save(t, a, k, coalesce.Outcome{Value: []byte("x"), Lease: r.Lease})
	if ok, err := a.Delete(k); !ok || err != nil {
		t.Fatalf("Delete of a result = %v, %v", ok, err)
	}
	if r := load(t, a, k); r.Lease == nil {
		t.Fatalf("Load after Delete = %+v", r)
	}
}

// TestCorruptValues: keys this package did not write are errors (the
// Group then computes), never a panic or a wrong answer.
func TestCorruptValues(t *testing.T) {
	addr := needRedis(t)
	a := newTier(t, testOptions(t, addr))
	c := raw(t, addr)
	for i, v := range []string{"", "Xjunk", "L", "L12", "L12:node", "E", "Eeno-space"} {
		k := tierKey(50 + i)
		c.Do(context.Background(), c.B().Set().Key(a.keysOf(k).result).Value(v).Build())
		_, err := a.Load(context.Background(), k)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: Load = %v, want ErrCorrupt", v, err)
		}
	}
	c.Do(context.Background(), c.B().Set().Key(a.secretKey()).Value("short").Build())
	if _, err := a.SharedSecret(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("SharedSecret with a short one stored = %v", err)
	}
}

// TestSharedSecret: every node gets the same 32 bytes.
func TestSharedSecret(t *testing.T) {
	o := testOptions(t, needRedis(t))
	a, b := newTier(t, o), newTier(t, o)
	sa, err := a.SharedSecret(context.Background())
	if err != nil || len(sa) != SecretSize {
		t.Fatal(sa, err)
	}
	sb, err := b.SharedSecret(context.Background())
	if err != nil || string(sa) != string(sb) {
		t.Fatalf("b's secret %x, a's %x (%v)", sb, sa, err)
	}
}

// TestBadLease: a Lease that is not this Tier's is an error, not a panic.
func TestBadLease(t *testing.T) {
	a := newTier(t, testOptions(t, needRedis(t)))
	if err := a.Save(context.Background(), tierKey(60), coalesce.Outcome{Lease: "nope"}); err == nil {
		t.Error("Save with a foreign Lease succeeded")
	}
	r := load(t, a, tierKey(61))
	if err := a.Save(context.Background(), tierKey(62), coalesce.Outcome{Lease: r.Lease}); err == nil {
		t.Error("Save with another key's Lease succeeded")
	}
}

// TestClosed: a closed Tier refuses, and its waiters return.
func TestClosed(t *testing.T) {
	o := testOptions(t, needRedis(t))
	a := newTier(t, o)
	b, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	k := tierKey(70)
	load(t, a, k)
	done := make(chan error, 1)
	go func() { _, err := b.Load(context.Background(), k); done <- err }()
	time.Sleep(100 * time.Millisecond)
	b.Close()
	b.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting Load after Close = %v", err)
	}
	if _, err := b.Load(context.Background(), k); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close = %v", err)
	}
}

// TestAbandon: the clean-up of a claim whose reply was lost deletes that
// claim's lease only.
func TestAbandon(t *testing.T) {
	addr := needRedis(t)
	a := newTier(t, testOptions(t, addr))
	c := raw(t, addr)
	key := a.keysOf(tierKey(80)).result
	for _, tc := range []struct {
		held, suffix string
		gone         bool
	}{
		{"L5:n:7", ":n:7", true},
		{"L5:n:17", ":n:7", false},
		{"L5:m:7", ":n:7", false},
		{"Vn:7", ":n:7", false},
	} {
		c.Do(context.Background(), c.B().Set().Key(key).Value(tc.held).Build())
		if err := abandonScript.Exec(context.Background(), c, []string{key}, []string{tc.suffix}).Error(); err != nil {
			t.Fatal(err)
		}
		if gone := get(t, c, key) == "<nil>"; gone != tc.gone {
			t.Errorf("%q after abandoning %q: gone %v", tc.held, tc.suffix, gone)
		}
	}
}

// TestTrackingConnectionDropped: when the connection that tracked a
// waiter's key drops, Redis' invalidations for it are lost; rueidis then
// reports a nil batch, which wakes the waiter to read and track the key
// again on a new connection, so the owner's write still wakes it at once.
func TestTrackingConnectionDropped(t *testing.T) {
	addr := needRedis(t)
	o := testOptions(t, addr)
	o.PollInterval = time.Minute // a lost invalidation would show as a wait past hangBound
	a, b := newTier(t, o), newTier(t, o)
	c := raw(t, addr)
	k := tierKey(90)
	r := load(t, a, k)
	done := make(chan coalesce.TierResult, 1)
	go func() { done <- load(t, b, k) }()
	time.Sleep(200 * time.Millisecond)
	if err := c.Do(context.Background(), c.B().ClientKill().TypeNormal().SkipmeYes().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // b reconnects and waits again
	start := time.Now()
	save(t, a, k, coalesce.Outcome{Value: []byte("after the drop"), Lease: r.Lease})
	select {
	case r := <-done:
		if string(r.Value) != "after the drop" {
			t.Fatalf("b's Load = %+v", r)
		}
		if d := time.Since(start); d > hangBound {
			t.Errorf("b woke %v after the write", d)
		}
	case <-time.After(hangBound):
		t.Fatal("b missed the write after its connection dropped")
	}
}

// TestLeaseLapses: a live owner that never finishes holds the input for
// LeaseTTL at most; then a waiter takes it (woken by the expiry's
// invalidation), and the old owner's late write is fenced out.
func TestLeaseLapses(t *testing.T) {
	o := testOptions(t, needRedis(t))
	o.LeaseTTL = 1500 * time.Millisecond
	o.PollInterval = 10 * time.Second
	a, b := newTier(t, o), newTier(t, o)
	k := tierKey(100)
	ra := load(t, a, k)
	start := time.Now()
	rb := load(t, b, k)
	if rb.Lease == nil {
		t.Fatalf("b's Load = %+v, want the lapsed lease", rb)
	}
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Errorf("b took the lease after %v; LeaseTTL is %v", d, o.LeaseTTL)
	}
	save(t, b, k, coalesce.Outcome{Value: []byte("b"), Lease: rb.Lease})
	save(t, a, k, coalesce.Outcome{Value: []byte("a"), Lease: ra.Lease})
	if s := a.Stats(); s.LeasesLost != 1 {
		t.Errorf("a's stats %+v", s)
	}
	if r := load(t, a, k); string(r.Value) != "b" {
		t.Errorf("Load = %+v, want b's result", r)
	}
}

// TestGroupsShareTier: two Groups of one process on one Tier coalesce
// through it too: the second waits for the first's lease.
func TestGroupsShareTier(t *testing.T) {
	tier := newTier(t, testOptions(t, needRedis(t)))
	secret := make([]byte, 32)
	var calls atomic.Int32
	started := make(chan struct{}, 2)
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		calls.Add(1)
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return []byte("v"), nil
	}
	var gs []*coalesce.Group
	for range 2 {
		g, err := coalesce.New(fn, coalesce.Options{Workers: 2, Tiers: []coalesce.Tier{tier}, Secret: secret, CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		gs = append(gs, g)
	}
	done := make(chan coalesce.Result, 1)
	go func() {
		r, _ := gs[0].Get(context.Background(), []byte("in"))
		done <- r
	}()
	<-started
	r, err := gs[1].Get(context.Background(), []byte("in"))
	if err != nil || string(r.Value) != "v" || r.Source != coalesce.Loaded {
		t.Errorf("second Group's Get = %+v, %v", r, err)
	}
	if r := <-done; r.Source != coalesce.Computed {
		t.Errorf("first Group's Get = %+v", r)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d computations", n)
	}
}

// TestWriteRefused: a result Redis refuses to store (out of memory under
// noeviction) is an error, and the lease is given back, so that the
// waiters do not wait for LeaseTTL: they compute themselves.
func TestWriteRefused(t *testing.T) {
	r := ownRedis(t)
	c := raw(t, r.addr)
	config := func(k, v string) {
		t.Helper()
		if err := c.Do(context.Background(), c.B().ConfigSet().ParameterValue().ParameterValue(k, v).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	o := testOptions(t, r.addr)
	o.PollInterval = 10 * time.Second
	a, b := newTier(t, o), newTier(t, o)
	k := tierKey(110)
	ra := load(t, a, k)
	done := make(chan error, 1)
	go func() {
		rb, err := b.Load(context.Background(), k)
		if err == nil && rb.Lease == nil {
			err = fmt.Errorf("b's Load = %+v, want the lease a gave back", rb)
		} else if err != nil && !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("b's Load: %w", err)
		} else {
			err = nil // the lease, or Redis' refusal of b's own claim: either way, no wait
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	config("maxmemory-policy", "noeviction")
	config("maxmemory", "1")
	if err := a.Save(context.Background(), k, coalesce.Outcome{Value: []byte("x"), Lease: ra.Lease}); err == nil {
		t.Fatal("Save succeeded with Redis out of memory")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangBound):
		t.Fatal("b still waits for a lease whose write was refused")
	}
	config("maxmemory", "0")
}

// TestTooLarge: a result Redis could not take is refused before it is
// sent, and the lease given back.
func TestTooLarge(t *testing.T) {
	addr := needRedis(t)
	a := newTier(t, testOptions(t, addr))
	k := tierKey(120)
	r := load(t, a, k)
	err := a.Save(context.Background(), k, coalesce.Outcome{Value: make([]byte, MaxValueSize+1), Lease: r.Lease})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Save = %v, want ErrTooLarge", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get(t, raw(t, addr), a.keysOf(k).result) != "<nil>" {
		if time.Now().After(deadline) {
			t.Fatal("the lease was not given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
