package coalesce

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// peekTier is a mapTier that is also a TierPeeker.
type peekTier struct {
	*mapTier
	peeks   atomic.Int64
	peekErr error
	panics  bool
}

func (t *peekTier) Peek(ctx context.Context, k TierKey) (TierResult, error) {
	t.peeks.Add(1)
	if t.panics {
		panic("broken tier")
	}
	if t.peekErr != nil {
		return TierResult{}, t.peekErr
	}
	return t.lookup(k), nil
}

// TestFindKey: a result kept only by a tier is found by its key, through
// the tiers that are TierPeekers only, without a Load (no lease, no
// computation) and without being copied into memory; memory and pending
// calls answer first; a tier's kept error, a failing or panicking tier
// and a cancelled context each give their documented answer.
func TestFindKey(t *testing.T) {
	plain, peek := newMapTier(), &peekTier{mapTier: newMapTier()}
	var calls atomic.Int64
	release := make(chan struct{})
	fn := func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "slow" {
			<-release
		}
		return echo(&calls)(ctx, in)
	}
	g := newGroup(t, fn, Options{Tiers: []Tier{plain, peek}, Secret: testSecret, Version: "v1"})
	ctx := context.Background()
	k, err := g.KeyOf([]byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	peek.m[TierKey{Version: "v1", Key: k}] = []byte("from the tier")

	st, r, err := g.FindKey(ctx, k)
	if st != Ready || string(r.Value) != "from the tier" || r.Source != Loaded || err != nil {
		t.Fatalf("FindKey of a result kept by a tier = %v %q %v %v", st, r.Value, r.Source, err)
	}
	if plain.loads.Load() != 0 || peek.loads.Load() != 0 || calls.Load() != 0 {
		t.Fatalf("FindKey loaded (%d, %d) or computed (%d)", plain.loads.Load(), peek.loads.Load(), calls.Load())
	}
	if st, _ := g.PeekKey(k); st != Absent {
		t.Fatalf("after FindKey, PeekKey = %v: the result was copied into memory", st)
	}

	// Nothing anywhere.
	none, _ := g.KeyOf([]byte("nowhere"))
	if st, r, err := g.FindKey(ctx, none); st != Absent || r.Value != nil || err != nil {
		t.Fatalf("FindKey of an unknown key = %v %q %v", st, r.Value, err)
	}

	// Memory first: no tier asked.
	if _, err := g.Get(ctx, []byte("hot")); err != nil {
		t.Fatal(err)
	}
	hot, _ := g.KeyOf([]byte("hot"))
	before := peek.peeks.Load()
	if st, r, _ := g.FindKey(ctx, hot); st != Ready || string(r.Value) != "r:hot" || r.Source != Hit || peek.peeks.Load() != before {
		t.Fatalf("FindKey of a memory hit = %v %q %v, %d peeks", st, r.Value, r.Source, peek.peeks.Load()-before)
	}

	// A pending call: Pending, no tier asked.
	fu, err := g.Start([]byte("slow"))
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := g.KeyOf([]byte("slow"))
	eventually(t, "the slow call pending", func() bool { st, _ := g.PeekKey(slow); return st == Pending })
	before = peek.peeks.Load()
	if st, _, err := g.FindKey(ctx, slow); st != Pending || err != nil || peek.peeks.Load() != before {
		t.Fatalf("FindKey of a pending call = %v %v, %d peeks", st, err, peek.peeks.Load()-before)
	}
	close(release)
	if _, err := fu.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// An error the tier keeps for the key.
	kept := errors.New("failed on another node")
	peek.answer = kept
	if st, _, err := g.FindKey(ctx, none); st != Absent || !errors.Is(err, kept) {
		t.Fatalf("FindKey with a kept error = %v %v", st, err)
	}
	peek.answer = nil

	// A failing tier, a panicking one: skipped and counted.
	errs := g.Stats().TierErrors
	peek.peekErr = errors.New("disk on fire")
	if st, _, err := g.FindKey(ctx, k); st != Absent || err != nil {
		t.Fatalf("FindKey with a failing tier = %v %v", st, err)
	}
	peek.peekErr, peek.panics = nil, true
	if st, _, err := g.FindKey(ctx, k); st != Absent || err != nil {
		t.Fatalf("FindKey with a panicking tier = %v %v", st, err)
	}
	peek.panics = false
	if n := g.Stats().TierErrors - errs; n != 2 {
		t.Fatalf("TierErrors grew by %d; want 2", n)
	}

	// A context already done.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if st, _, err := g.FindKey(cctx, k); st != Absent || !errors.Is(err, context.Canceled) {
		t.Fatalf("FindKey with a cancelled context = %v %v", st, err)
	}

	// A Group without tiers: memory only.
	g2 := newGroup(t, fn, Options{})
	if st, _, err := g2.FindKey(ctx, k); st != Absent || err != nil {
		t.Fatalf("FindKey without tiers = %v %v", st, err)
	}
	var zero Group
	if _, _, err := zero.FindKey(ctx, k); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("FindKey on a zero Group = %v", err)
	}
}
