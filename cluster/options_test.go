package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Addr: "localhost"},
		{Addr: "a:1", URL: "redis://a:1"},
		{Addr: "a:1", Prefix: "x{y}"},
		{Addr: "a:1", Prefix: strings.Repeat("p", LimitPrefixLength+1)},
		{Addr: "a:1", LeaseTTL: -1},
		{Addr: "a:1", PollInterval: time.Microsecond},
		{Addr: "a:1", NegativeTTL: LimitTTL + 1},
		{Addr: "a:1", LivenessTTL: time.Second, LivenessRefresh: time.Second},
		{Addr: "a:1", LeaseTTL: time.Second, LivenessTTL: 2 * time.Second},
		{URL: "notaurl://x"},
	} {
		_, err := New(context.Background(), o)
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("New(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
}

// TestUnreachable: New fails within its timeout when Redis is not there.
func TestUnreachable(t *testing.T) {
	start := time.Now()
	_, err := New(context.Background(), Options{Addr: "127.0.0.1:1", Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("New = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > hangBound {
		t.Errorf("New took %v to fail", d)
	}
}

func TestKeys(t *testing.T) {
	tr := &Tier{opts: Options{Prefix: "p:"}}
	var b [16]byte
	b[0], b[1] = 0xab, 0xcd
	k := coalesce.TierKey{Namespace: "a:b{c}%", Version: "v 1", Key: coalesce.KeyFromBytes(b)}
	got := tr.keysOf(k)
	want := "p:r:a%3Ab%7Bc%7D%25:v%201:{abcd}0000000000000000000000000000"
	if got.result != want || got.fence != "p:fence:{abcd}" {
		t.Errorf("keysOf = %+v, want %s", got, want)
	}
}

func TestDecode(t *testing.T) {
	d, err := decode("k", "L12:node:3")
	if err != nil || d.tag != tagLease || d.owner != "node" {
		t.Errorf("lease: %+v %v", d, err)
	}
	d, err = decode("k", "V")
	if err != nil || d.tag != tagValue || len(d.value) != 0 {
		t.Errorf("empty value: %+v %v", d, err)
	}
	d, err = decode("k", "Etn1 msg with spaces")
	if err != nil || d.err.Node != "n1" || d.err.Message != "msg with spaces" || !errors.Is(d.err, coalesce.ErrTimeout) {
		t.Errorf("negative: %+v %v", d, err)
	}
	long := negativeEntry("n", errors.New(strings.Repeat("x", 5000)))
	if len(long) > maxErrorMessage+10 {
		t.Errorf("negative entry of %d bytes", len(long))
	}
}

// TestErrorLogRateLimited: an outage seen by every request logs one line
// per errLogEvery, not one per request.
func TestErrorLogRateLimited(t *testing.T) {
	var lines int
	tr := &Tier{}
	tr.errLog.logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		lines++
		return len(p), nil
	}), nil))
	for range 1000 {
		tr.redisError("load", errors.New("refused"))
	}
	if lines != 1 || tr.Stats().RedisErrors != 1000 {
		t.Errorf("%d lines, %d errors counted", lines, tr.Stats().RedisErrors)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// FuzzDecode: whatever a key under the prefix holds, decode answers a
// value, a lease, an error or ErrCorrupt, and never panics; the entries
// this package writes decode to what was written.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "V", "Vabc", "L1:n:2", "L:n", "Ee", "Eexn msg", "Etn ", "E\xdbn m", "X", "L1::2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decode("k", s)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode(%q): %v", s, err)
			}
			return
		}
		switch d.tag {
		case tagValue:
			if string(d.value) != s[1:] {
				t.Fatalf("decode(%q) value %q", s, d.value)
			}
		case tagLease:
			if d.owner == "" {
				t.Fatalf("decode(%q): a lease without an owner", s)
			}
		case tagNegative:
			back := negativeEntry("other", d.err)
			if d2, err := decode("k", back); err != nil || d2.err.Node != d.err.Node || d2.err.Message != d.err.Message {
				t.Fatalf("decode(%q) → %q → %+v, %v", s, back, d2.err, err)
			}
		default:
			t.Fatalf("decode(%q): tag %q", s, d.tag)
		}
	})
}
