package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// scrape reads GET /metrics and returns each sample's value by its name
// and labels as written ("coalesce_hits_total",
// `coalesce_http_request_duration_seconds_count{source="hit"}`).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, body := get(t, url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the Prometheus text format", ct)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("GET /metrics: unreadable sample %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

const httpLatency = "coalesce_http_request_duration_seconds"

// httpCount names the count of answers from src in the latency histogram.
func httpCount(src string) string { return httpLatency + `_count{source="` + src + `"}` }

func TestMetricsFollowRequests(t *testing.T) {
	ts, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{})
	before := scrape(t, ts.URL)
	for _, name := range []string{
		"coalesce_requests_total", "coalesce_hits_total", "coalesce_joined_total", "coalesce_computed_total",
		"coalesce_uncached_total", "coalesce_errors_total", "coalesce_panics_total", "coalesce_timeouts_total",
		"coalesce_overloaded_total", "coalesce_abandoned_total", "coalesce_evictions_total",
		"coalesce_cache_entries", "coalesce_cache_bytes", "coalesce_cache_capacity_bytes",
		"coalesce_in_flight", "coalesce_queued", "coalesce_waiters", "coalesce_overdue",
		"coalesce_http_waiters", "coalesce_async_pending",
		"coalesce_compute_seconds_count", "coalesce_queue_wait_seconds_count",
		httpCount("hit"), httpCount("error"),
		"go_goroutines",
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if before["coalesce_requests_total"] != 0 || before["coalesce_cache_capacity_bytes"] != 8<<20 {
		t.Errorf("before any request: requests %v, capacity %v; want 0 and %d",
			before["coalesce_requests_total"], before["coalesce_cache_capacity_bytes"], 8<<20)
	}

	for range 3 {
		if resp, body := post(t, ts.URL+"/v1/compute", "abc"); resp.StatusCode != 200 || body != "ABC" {
			t.Fatalf("compute: %d %q", resp.StatusCode, body)
		}
	}
	post(t, ts.URL+"/v1/compute", "fail")

	after := scrape(t, ts.URL)
	for name, want := range map[string]float64{
		"coalesce_requests_total":                       4,
		"coalesce_hits_total":                           2,
		"coalesce_computed_total":                       1, // "fail" ran, but returned no result
		"coalesce_errors_total":                         1,
		"coalesce_cache_entries":                        1,
		"coalesce_compute_seconds_count":                2,
		httpCount("hit"):                                2,
		httpCount("computed"):                           1,
		httpCount("joined"):                             0,
		httpCount("error"):                              1,
		httpLatency + `_bucket{source="hit",le="+Inf"}`: 2,
		"coalesce_http_waiters":                         0,
		"coalesce_async_pending":                        0,
	} {
		if got, ok := after[name]; !ok || got != want {
			t.Errorf("after 3 requests for one input and 1 failing: %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if after["coalesce_cache_bytes"] <= 0 {
		t.Errorf("coalesce_cache_bytes = %v with one result cached", after["coalesce_cache_bytes"])
	}
}

func TestMetricsCountBatchInputs(t *testing.T) {
	ts, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{})
	post(t, ts.URL+"/v1/compute", "a")
	var body bytes.Buffer
	for _, in := range []string{"a", "b", "fail"} {
		binary.Write(&body, binary.BigEndian, uint32(len(in)))
		body.WriteString(in)
	}
	if resp, out := post(t, ts.URL+"/v1/compute/batch", body.String(), "Content-Type", batchBinaryType); resp.StatusCode != 200 {
		t.Fatalf("batch: %d %q", resp.StatusCode, out)
	}
	m := scrape(t, ts.URL)
	for src, want := range map[string]float64{"hit": 1, "computed": 2, "error": 1} {
		name := httpCount(src)
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}

// Two Servers in one process each export their own Group.
func TestMetricsPerServer(t *testing.T) {
	ts1, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{})
	ts2, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{})
	post(t, ts1.URL+"/v1/compute", "x")
	if got := scrape(t, ts1.URL)["coalesce_requests_total"]; got != 1 {
		t.Errorf("first server: requests %v, want 1", got)
	}
	if got := scrape(t, ts2.URL)["coalesce_requests_total"]; got != 0 {
		t.Errorf("second server: requests %v, want 0", got)
	}
}

// BenchmarkObserve is the cost metrics add to every answer, hits included.
func BenchmarkObserve(b *testing.B) {
	m := newMetrics(nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observe("hit", 42*time.Microsecond)
		}
	})
}
