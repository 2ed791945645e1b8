package trace

import (
	"slices"
	"testing"
)

func TestWorkloadsAreDeterministic(t *testing.T) {
	a, _ := ZipfKeys(3, 0.9, 1000, 5000)
	b, _ := ZipfKeys(3, 0.9, 1000, 5000)
	c, _ := ZipfKeys(4, 0.9, 1000, 5000)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatal("ZipfKeys: the same seed must give the same keys, another seed others")
	}
	x, _ := ScanZipfKeys(3, 0.9, 1000, 5000, 10, 100)
	y, _ := ScanZipfKeys(3, 0.9, 1000, 5000, 10, 100)
	if !slices.Equal(x, y) {
		t.Fatal("ScanZipfKeys: the same seed must give the same keys")
	}
}

func TestScanZipfKeys(t *testing.T) {
	const n, scanLen, period = 100, 7, 20
	keys, err := ScanZipfKeys(1, 1.1, n, 1000, scanLen, period)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1000 {
		t.Fatalf("got %d keys, want 1000", len(keys))
	}
	seen := map[uint64]bool{}
	for i, k := range keys {
		inScan := i%(scanLen+period) >= period
		if inScan != (k > n) {
			t.Fatalf("key %d at %d: scan keys must be above n exactly in the scan runs", k, i)
		}
		if inScan && seen[k] {
			t.Fatalf("scan key %d at %d was requested before", k, i)
		}
		seen[k] = true
	}
}

func TestLoopKeys(t *testing.T) {
	keys, err := LoopKeys(3, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 3, 1, 2, 3, 1}; !slices.Equal(keys, want) {
		t.Fatalf("LoopKeys = %v, want %v", keys, want)
	}
}

func TestWorkloadsRejectBadArguments(t *testing.T) {
	errs := []error{}
	_, err := ZipfKeys(1, 0.9, 10, 0)
	errs = append(errs, err)
	_, err = ZipfKeys(1, -2, 10, 10)
	errs = append(errs, err)
	_, err = ScanZipfKeys(1, 0.9, 10, 10, 0, 5)
	errs = append(errs, err)
	_, err = LoopKeys(0, 10)
	errs = append(errs, err)
	_, err = LoopKeys(10, maxRequests+1)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: bad arguments were accepted", i)
		}
	}
}
