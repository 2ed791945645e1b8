package sim

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSummary checks the summary against figures chosen so that each
// design wins somewhere: it must be computed from the results, not
// written for one expected outcome.
func TestSummary(t *testing.T) {
	lat := func(p50, p99 time.Duration) Latency { return Latency{N: 100, P50: p50, P95: p99, P99: p99, Max: p99} }
	rep := &Report{
		Config: Config{Duration: time.Second, Agents: 1, InFlight: 1, Workers: 1, CacheBytes: 1 << 20},
		Stream: StreamSummary{Requests: 10000},
		Results: []Result{
			{Design: "user", Title: "the user's", Requests: 5000, NotSent: 5000, Duplicates: 0,
				HitLat: lat(30*time.Millisecond, 300*time.Millisecond), MissLat: lat(90*time.Millisecond, 300*time.Millisecond),
				EndToEnd: lat(time.Second, 2*time.Second), CPUSeconds: 0.1},
			{Design: "otter", Title: "otter's", Requests: 10000, Duplicates: 0,
				HitLat: lat(time.Microsecond, 30*time.Microsecond), MissLat: lat(400*time.Millisecond, 500*time.Millisecond),
				EndToEnd: lat(300*time.Millisecond, time.Second), CPUSeconds: 0.1},
			{Design: "coalesce", Title: "ours", Requests: 10000, Duplicates: 0,
				HitLat: lat(3*time.Microsecond, 50*time.Microsecond), MissLat: lat(400*time.Millisecond, 500*time.Millisecond),
				EndToEnd: lat(320*time.Millisecond, 900*time.Millisecond), CPUSeconds: 0.3},
		},
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// The report shows these lines in a fixed-width block: a long one was
	// cut off at its edge.
	for _, line := range strings.SplitN(out, "\n", 4)[:3] {
		if len(line) > 100 {
			t.Errorf("a heading line of %d characters: %q", len(line), line)
		}
	}
	for _, want := range []string{
		"duplicate computations  all tie: user 0, otter 0, coalesce 0",
		"requests not sent       best: otter 0, coalesce 0; then user 5000",
		"hit latency p50         best: otter 1.00µs; then coalesce 3.00µs (3.00x), user 30.0ms (30000x)",
		"miss latency p50        best: user 90.0ms; then otter 400ms (4.44x), coalesce 400ms (4.44x)",
		"end-to-end p50          best: otter 300ms, coalesce 320ms; then user 1.00s (3.33x)",
		"end-to-end p99          best: coalesce 900ms; then otter 1.00s (1.11x), user 2.00s (2.22x)",
		"CPU per request         best: otter 10.0µs; then user 20.0µs (2.00x), coalesce 30.0µs (3.00x)",
		"fell behind, leaving part of the stream unsent: user 50%",
		"coalesce: best or tied in duplicate computations, requests not sent, end-to-end p50, end-to-end p99;",
		"hit latency p50 (3.00µs against otter's 1.00µs)",
		"miss latency p50 (400ms against user's 90.0ms)",
		"  otter     otter's", // the legend of the designs
		"  not sent    requests still waiting for a free slot",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// TestHTMLLayout checks the geometry of the report that a browser would
// otherwise get wrong silently: legend labels inside the image, and
// axis labels apart from each other.
func TestHTMLLayout(t *testing.T) {
	series := []cdfSeries{{name: "singleflight", sorted: make([]time.Duration, 65697)}, {name: "a", sorted: []time.Duration{5}}}
	for i := range series[0].sorted {
		series[0].sorted[i] = time.Duration(i + 1)
	}
	svg := cdfSVG("hits", series)
	width, _ := strconv.Atoi(regexp.MustCompile(`width="(\d+)"`).FindStringSubmatch(svg)[1])
	label := regexp.MustCompile(`<text x="(\d+)" y="\d+">singleflight \(65697\)</text>`).FindStringSubmatch(svg)
	if label == nil {
		t.Fatalf("no legend label in\n%s", svg)
	}
	x, _ := strconv.Atoi(label[1])
	// 7 px per character at 11 px is wider than any sans-serif font draws.
	if end := x + 7*len("singleflight (65697)"); end > width {
		t.Errorf("the legend label ends near x=%d, beyond the image's width %d", end, width)
	}
	var ys []float64
	for _, m := range regexp.MustCompile(`<text x="\d+" y="([\d.]+)" text-anchor="end">`).FindAllStringSubmatch(svg, -1) {
		y, _ := strconv.ParseFloat(m[1], 64)
		ys = append(ys, y)
	}
	if len(ys) < 4 {
		t.Fatalf("%d labels on the share axis; want at least 4", len(ys))
	}
	for i := 1; i < len(ys); i++ {
		if d := ys[i-1] - ys[i]; d < 14 {
			t.Errorf("share-axis labels %d and %d are %.1f px apart; at 11 px they overlap", i-1, i, d)
		}
	}
}

// TestSummaryBoundary checks the line that says what the process boundary
// added, from figures chosen so that the miss latency went down.
func TestSummaryBoundary(t *testing.T) {
	lat := func(p50, p99 time.Duration) Latency { return Latency{N: 100, P50: p50, P95: p99, P99: p99, Max: p99} }
	rep := &Report{
		Config: Config{Duration: time.Second, Agents: 1, InFlight: 1, Workers: 1, CacheBytes: 1 << 20},
		Stream: StreamSummary{Requests: 10000},
		Results: []Result{
			{Design: "coalesce", Title: "ours", Requests: 10000,
				HitLat: lat(3*time.Microsecond, 50*time.Microsecond), MissLat: lat(400*time.Millisecond, 500*time.Millisecond), CPUSeconds: 0.3},
			{Design: "daemon", Title: "ours behind the daemon", Requests: 10000,
				HitLat: lat(103*time.Microsecond, 350*time.Microsecond), MissLat: lat(390*time.Millisecond, 501*time.Millisecond), CPUSeconds: 1.3},
		},
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	// Compared with its line breaks and indents as single spaces.
	want := "the process boundary (daemon less coalesce): hit p50 +100µs (103µs against 3.00µs), p99 +300µs; " +
		"miss p50 -10.0ms (390ms against 400ms), p99 +1.00ms; CPU per request +100µs."
	if !strings.Contains(strings.Join(strings.Fields(buf.String()), " "), want) {
		t.Errorf("the output lacks\n%s\nin\n%s", want, buf.String())
	}
	// Without the daemon design, no such line.
	rep.Results = rep.Results[:1]
	buf.Reset()
	rep.WriteTable(&buf)
	if strings.Contains(buf.String(), "process boundary") {
		t.Errorf("a boundary line without the daemon design:\n%s", buf.String())
	}
}
