package histogram

import (
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	for _, v := range []uint64{0, 1, 7, 8, 9, 15, 16, 100, 1000, 123456789, 1 << 40, 1<<63 - 1} {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("value %d: bucket %d out of range", v, i)
		}
		if up := upperBound(i); up < v {
			t.Fatalf("value %d in bucket %d whose upper bound %d is below it", v, i, up)
		}
		if i > 0 && upperBound(i-1) >= v {
			t.Fatalf("value %d: previous bucket's upper bound %d already covers it", v, upperBound(i-1))
		}
	}
}

func TestQuantilesWithinBucketError(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Summary()
	if s.Count != 1000 || s.Max != time.Millisecond {
		t.Fatalf("count %d max %v", s.Count, s.Max)
	}
	check := func(name string, got, want time.Duration) {
		if got < want || float64(got) > float64(want)*1.125 {
			t.Errorf("%s = %v, want within [%v, %v]", name, got, want, time.Duration(float64(want)*1.125))
		}
	}
	check("p50", s.P50, 500*time.Microsecond)
	check("p99", s.P99, 990*time.Microsecond)
	if s.Mean < 500*time.Microsecond || s.Mean > 501*time.Microsecond {
		t.Errorf("mean %v", s.Mean)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Record(time.Duration(i))
			}
		}()
	}
	wg.Wait()
	if s := h.Summary(); s.Count != 8000 || s.Max != 999 {
		t.Fatalf("count %d max %d", s.Count, s.Max)
	}
}
