package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // a fragment the error must contain
	}{
		{"no capacity", Config{}, "no capacity"},
		{"negative bytes", Config{MaxBytes: -1}, "MaxBytes is -1"},
		{"negative entries", Config{MaxEntries: -5}, "MaxEntries is -5"},
		{"negative value limit", Config{MaxBytes: 1 << 20, MaxValueSize: -1}, "MaxValueSize is -1"},
		{"negative expected", Config{MaxBytes: 1 << 20, ExpectedValueSize: -1}, "ExpectedValueSize is -1"},
		{"negative shards", Config{MaxBytes: 1 << 20, Shards: -2}, "Shards is -2"},
		{"budget below one entry", Config{MaxBytes: 100}, "holds no entry"},
		{"budget too small for shards", Config{MaxBytes: 4096, Shards: 4}, "too small"},
		{"value above arena", Config{MaxBytes: 1 << 20, MaxValueSize: 1 << 20}, "MaxValueSize 1048576 does not fit"},
		{"shard above 2 GiB", Config{MaxBytes: 5 << 30, Shards: 1}, "exceeds"},
		{"bad small share", Config{MaxBytes: 1 << 20, smallShare: 1.5}, "small queue share"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New(%+v) = %v, want an error containing %q", tc.cfg, s.Stats(), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) error %q, want it to contain %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestConfigSizes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        Config
		shards     int
		minEntries int
	}{
		{"one entry", Config{MaxEntries: 1}, 1, 1},
		{"ten entries", Config{MaxEntries: 10}, 1, 10},
		{"tiny entries", Config{MaxEntries: 100}, 1, 100},
		{"small bytes", Config{MaxBytes: 1 << 20}, 4, 6000},
		{"entries and bytes", Config{MaxBytes: 1 << 20, MaxEntries: 50}, 1, 50},
		{"explicit shards", Config{MaxBytes: 8 << 20, Shards: 3}, 3, 50000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if st.Shards != tc.shards && !(tc.shards > 1 && st.Shards > 1) {
				t.Errorf("shards = %d, want %d", st.Shards, tc.shards)
			}
			if st.MaxEntries < tc.minEntries {
				t.Errorf("MaxEntries = %d, want ≥ %d", st.MaxEntries, tc.minEntries)
			}
			if tc.cfg.MaxBytes > 0 && st.Capacity > tc.cfg.MaxBytes {
				t.Errorf("capacity %d above the budget %d", st.Capacity, tc.cfg.MaxBytes)
			}
			if s.MaxValueSize() <= 0 || s.MaxValueSize() > defaultMaxValueSize {
				t.Errorf("MaxValueSize = %d", s.MaxValueSize())
			}
		})
	}
}

func TestConfigLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bytes above the limit", Config{MaxBytes: MaxBytesLimit + 1}, "MaxBytesLimit"},
		{"entries above the limit", Config{MaxEntries: MaxEntriesLimit + 1}, "MaxEntriesLimit"},
		{"entries deriving too many bytes", Config{MaxEntries: MaxEntriesLimit}, "MaxBytesLimit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) error %v, want one naming %s", tc.cfg, err, tc.want)
			}
		})
	}
	// The limit itself is a valid budget; its layout is not allocated here.
	if _, err := (Config{MaxBytes: MaxBytesLimit}).layout(); err != nil {
		t.Fatalf("MaxBytes at MaxBytesLimit: %v", err)
	}
}

// TestMinBytes checks that MinBytes is the least budget New accepts, that
// every larger budget sampled is accepted too, and that the too-small
// errors name it.
func TestMinBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	for _, c := range []Config{
		{},
		{Shards: 4},
		{Shards: 64},
		{MaxValueSize: 1 << 20},
		{MaxValueSize: 100},
		{ExpectedValueSize: 4096},
		{ExpectedValueSize: 1, MaxValueSize: 64 << 10},
		{MaxEntries: 100},
		{MaxValueSize: 8 << 20, Shards: 3},
		{noAdmit: true},
	} {
		m := c.MinBytes()
		t.Logf("%+v: minimum %d", c, m)
		if m <= 0 {
			t.Fatalf("MinBytes(%+v) = %d", c, m)
		}
		ok := c
		ok.MaxBytes = m
		if _, err := New(ok); err != nil {
			t.Fatalf("New at MinBytes %d: %v", m, err)
		}
		small := c
		small.MaxBytes = m - 1
		if m > 1 {
			_, err := small.layout()
			if err == nil {
				t.Fatalf("%+v: New succeeds below MinBytes %d", small, m)
			}
			if want := fmt.Sprintf("the minimum MaxBytes is %d", m); !strings.Contains(err.Error(), want) {
				t.Fatalf("%+v: error %q does not say %q", small, err, want)
			}
		}
		for range 200 {
			more := c
			more.MaxBytes = m + rng.Int64N(64<<20)
			if _, err := more.layout(); err != nil {
				t.Fatalf("%+v: fails above MinBytes %d: %v", more, m, err)
			}
		}
	}
	if m := (Config{MaxValueSize: 1 << 30, Shards: 1}).MinBytes(); m != -1 {
		t.Fatalf("MinBytes of a value no shard can hold = %d, want -1", m)
	}
	if m := (Config{Shards: -1}).MinBytes(); m != -1 {
		t.Fatalf("MinBytes of an invalid config = %d, want -1", m)
	}
}
