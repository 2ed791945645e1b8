package store

import (
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
		{"shard above 4 GiB", Config{MaxBytes: 5 << 30, Shards: 1}, "exceeds"},
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
