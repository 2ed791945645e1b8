package trace

import (
	"math"
	"testing"
)

// TestZipfDistribution compares the draws with the exact probabilities
// k^-s / H(n,s) by a chi-squared test. The seed is fixed, so the test is
// deterministic; the threshold is the 0.1% critical value, so a correct
// generator passes for nearly every seed while a wrong exponent or an
// off-by-one in the ranks fails by orders of magnitude.
func TestZipfDistribution(t *testing.T) {
	const (
		n     = 50
		draws = 200_000
		// chi-squared critical value for 49 degrees of freedom at p = 0.001
		critical = 85.35
	)
	for _, s := range []float64{0.6, 0.8, 0.99, 1.0, 1.01, 1.2, 2.5} {
		z, err := NewZipf(newRand(7), s, n)
		if err != nil {
			t.Fatal(err)
		}
		var counts [n + 1]int
		for range draws {
			k := z.Uint64()
			if k < 1 || k > n {
				t.Fatalf("s=%v: drew rank %d outside [1, %d]", s, k, n)
			}
			counts[k]++
		}
		var norm float64
		for k := 1; k <= n; k++ {
			norm += math.Pow(float64(k), -s)
		}
		var chi2 float64
		for k := 1; k <= n; k++ {
			want := draws * math.Pow(float64(k), -s) / norm
			d := float64(counts[k]) - want
			chi2 += d * d / want
		}
		if chi2 > critical {
			t.Errorf("s=%v: chi-squared %.1f > %.1f; the draws do not follow Zipf (rank 1: %d, rank %d: %d)", s, chi2, critical, counts[1], n, counts[n])
		}
	}
}

func TestZipfOneKeyAndHugeN(t *testing.T) {
	z, err := NewZipf(newRand(1), 0.9, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if k := z.Uint64(); k != 1 {
			t.Fatalf("Zipf over one key drew %d", k)
		}
	}
	z, err = NewZipf(newRand(1), 0.6, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if k := z.Uint64(); k < 1 || k > 1<<62 {
			t.Fatalf("Zipf over 2^62 keys drew %d", k)
		}
	}
}

func TestNewZipfRejects(t *testing.T) {
	for _, tt := range []struct {
		s float64
		n uint64
	}{{0, 10}, {-1, 10}, {math.NaN(), 10}, {math.Inf(1), 10}, {1, 0}} {
		if _, err := NewZipf(newRand(1), tt.s, tt.n); err == nil {
			t.Errorf("NewZipf(s=%v, n=%d) succeeded", tt.s, tt.n)
		}
	}
}
