package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coalesce-go/coalesce/internal/trace"
)

func TestParseWorkload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "web.trace.gz")
	if err := os.WriteFile(file, []byte("1\n2\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg      string
		name     string // "" if the argument must be rejected
		requests int
		errText  string
	}{
		{arg: "zipf:0.9", name: "zipf:0.9", requests: defaultRequests},
		{arg: "zipf:0.6:1000:5000", name: "zipf:0.6:1000:5000", requests: 5000},
		{arg: "zipf:1.2:1_000:2_000", name: "zipf:1.2:1_000:2_000", requests: 2000},
		{arg: "scan-zipf:0.9:1000:3000", name: "scan-zipf:0.9:1000:3000", requests: 3000},
		{arg: "loop:100:1000", name: "loop:100:1000", requests: 1000},
		{arg: file, name: "web", requests: 3},
		{arg: "zipf:", errText: "want zipf:S"},
		{arg: "zipf:0", errText: "skew"},
		{arg: "zipf:-1", errText: "skew"},
		{arg: "zipf:abc", errText: "skew"},
		{arg: "zipf:0.9:0", errText: "KEYS"},
		{arg: "zipf:0.9:10:x", errText: "REQUESTS"},
		{arg: "zipf:0.9:1:2:3", errText: "want zipf:S"},
		{arg: "loop:", errText: "want loop:KEYS"},
		{arg: "loop:10:20:30", errText: "want loop:KEYS"},
		{arg: "zipfian:0.9", errText: "synthetic workloads are"},
		{arg: filepath.Join(dir, "missing.gz"), errText: "no such file (stat "},
		{arg: dir, errText: "a directory, not a trace file"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			w, err := ParseWorkload(tt.arg, 1)
			if tt.name == "" {
				if !errors.Is(err, ErrBadWorkload) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("ParseWorkload(%q) error = %v, want ErrBadWorkload mentioning %q", tt.arg, err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			keys, err := w.Load()
			if err != nil {
				t.Fatal(err)
			}
			if w.Name != tt.name || len(keys) != tt.requests {
				t.Fatalf("ParseWorkload(%q) = %q with %d requests, want %q with %d", tt.arg, w.Name, len(keys), tt.name, tt.requests)
			}
		})
	}
}

func TestDefaultSizes(t *testing.T) {
	tests := []struct {
		distinct int
		want     []int
	}{
		{1, []int{1}},
		{100, []int{1, 2, 5, 10, 25, 50}},
		{1409, []int{14, 28, 70, 140, 350, 700}},
		{762543, []int{7600, 15000, 38000, 76000, 190000, 380000}},
	}
	for _, tt := range tests {
		if got := DefaultSizes(tt.distinct); !slices.Equal(got, tt.want) {
			t.Errorf("DefaultSizes(%d) = %v, want %v", tt.distinct, got, tt.want)
		}
	}
}

func workload(name string, keys []uint64) Workload {
	return Workload{Name: name, load: func() ([]uint64, error) { return keys, nil }}
}

// TestRunExactCounts checks LRU and OPT hit counts worked out by hand, and
// that every online policy stays between zero and OPT.
func TestRunExactCounts(t *testing.T) {
	loop := workload("loop", []uint64{1, 2, 3, 1, 2, 3, 1, 2, 3})
	// size 2: LRU always evicts the key needed next; OPT keeps 1 and 2 and
	// lets 3 pass. size 3: both keep everything after the first pass.
	want := map[string]map[int]int{LRU: {2: 0, 3: 6}, OPT: {2: 4, 3: 6}}
	results, err := Run(context.Background(), []Workload{loop}, Options{Sizes: []int{3, 2}, Policies: []string{LRU, OPT}, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("Run returned %d results, want 4: %+v", len(results), results)
	}
	for i, r := range results {
		if wantSize, wantPolicy := []int{2, 2, 3, 3}[i], []string{LRU, OPT}[i%2]; r.Size != wantSize || r.Policy != wantPolicy {
			t.Fatalf("result %d is %s at %d, want %s at %d: results are ordered by size, then policy", i, r.Policy, r.Size, wantPolicy, wantSize)
		}
		if r.Hits != want[r.Policy][r.Size] || r.Requests != 9 || r.Distinct != 3 || r.HitRatio != float64(r.Hits)/9 {
			t.Errorf("%s at %d: %+v, want %d hits of 9 requests", r.Policy, r.Size, r, want[r.Policy][r.Size])
		}
	}

	keys, _ := trace.ZipfKeys(1, 0.8, 5000, 50_000)
	results, err = Run(context.Background(), []Workload{workload("zipf", keys)}, Options{Sizes: []int{1000, 2000}})
	if err != nil {
		t.Fatal(err)
	}
	opt := map[int]int{}
	for _, r := range results {
		if r.Policy == OPT {
			opt[r.Size] = r.Hits
		}
	}
	for _, r := range results {
		if r.Error != "" || r.Hits <= 0 || r.Hits > opt[r.Size] {
			t.Errorf("%s at %d: %d hits (%s), want some, and at most OPT's %d", r.Policy, r.Size, r.Hits, r.Error, opt[r.Size])
		}
	}
}

func TestRunErrors(t *testing.T) {
	ok := workload("ok", []uint64{1})
	failing := Workload{Name: "bad", load: func() ([]uint64, error) { return nil, errors.New("boom") }}
	tests := []struct {
		name      string
		workloads []Workload
		opts      Options
		errText   string
	}{
		{"load fails", []Workload{ok, failing}, Options{}, "bad: boom"},
		{"empty", []Workload{workload("empty", nil)}, Options{}, "no requests"},
		{"zero size", []Workload{ok}, Options{Sizes: []int{0}}, "at least 1"},
		{"unknown policy", []Workload{ok}, Options{Policies: []string{"fifo"}}, "unknown policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.workloads, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("Run error = %v, want one mentioning %q", err, tt.errText)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, []Workload{ok}, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v, want context.Canceled", err)
	}
}

var sample = []Result{
	{Trace: "t", Size: 10, Policy: Ours, HitRatio: 0.5, Hits: 5, Requests: 10, Distinct: 4},
	{Trace: "t", Size: 10, Policy: LRU, HitRatio: 0.4, Hits: 4, Requests: 10, Distinct: 4},
	{Trace: "t", Size: 10, Policy: Otter, HitRatio: 0.3, Hits: 3, Requests: 10, Distinct: 4},
	{Trace: "t", Size: 10, Policy: OPT, HitRatio: 0.6, Hits: 6, Requests: 10, Distinct: 4},
	{Trace: "t", Size: 20, Policy: Ours, Requests: 10, Distinct: 4, Error: "too small"},
	{Trace: "t", Size: 20, Policy: LRU, HitRatio: 0.6, Hits: 6, Requests: 10, Distinct: 4},
	{Trace: "t", Size: 20, Policy: Otter, HitRatio: 0.6, Hits: 6, Requests: 10, Distinct: 4},
	{Trace: "t", Size: 20, Policy: OPT, HitRatio: 0.6, Hits: 6, Requests: 10, Distinct: 4},
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sample, true); err != nil {
		t.Fatal(err)
	}
	want := "| trace | size | ours | LRU | otter | OPT | ours−LRU |\n|---|---:|---:|---:|---:|---:|---:|\n" +
		"| t | 10 | 50.00 | 40.00 | 30.00 | 60.00 | +10.00 |\n" +
		"| t | 20 | n/a | 60.00 | 60.00 | 60.00 | n/a |\n"
	if b.String() != want {
		t.Fatalf("markdown table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteTable(&b, sample, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Fields(lines[1])[6] != "+10.00" {
		t.Fatalf("text table:\n%s", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample); err != nil {
		t.Fatal(err)
	}
	var got []Result
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("WriteJSON wrote invalid JSON: %v\n%s", err, b.String())
	}
	if !slices.Equal(got, sample) {
		t.Fatalf("JSON round trip = %+v, want %+v", got, sample)
	}
	if n := strings.Count(b.String(), "\n"); n != len(sample)+2 {
		t.Fatalf("WriteJSON wrote %d lines, want one per result plus the brackets", n)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(sample)
	if s.Points != 1 || s.AtLeastLRU != 1 || s.GapPoints != 1 {
		t.Fatalf("Summarize = %+v, want 1 point, 1 at least LRU", s)
	}
	if d := s.GapOurs - 0.1; d > 1e-9 || d < -1e-9 {
		t.Errorf("GapOurs = %v, want 0.1", s.GapOurs)
	}
	if d := s.GapOtter - 0.3; d > 1e-9 || d < -1e-9 {
		t.Errorf("GapOtter = %v, want 0.3", s.GapOtter)
	}
	var b bytes.Buffer
	if err := WriteSummary(&b, s, sample, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ours ≥ LRU at 1 of 1 points", "ours 10.00 points, otter 30.00 points", "n/a: t at size 20, ours: too small"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary %q lacks %q", b.String(), want)
		}
	}
}

func TestWriteCharts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts")
	results := append(slices.Clone(sample), Result{Trace: "zipf:0.9", Size: 5, Policy: LRU, HitRatio: 0.2})
	files, err := WriteCharts(dir, results)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "t.png"), filepath.Join(dir, "zipf-0.9.png")}
	if !slices.Equal(files, want) {
		t.Fatalf("WriteCharts wrote %v, want %v", files, want)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("%s is not a PNG (%v)", f, err)
		}
	}
}

func TestTraceKeyIsInjective(t *testing.T) {
	seen := map[uint64]bool{}
	for u := range uint64(100_000) {
		k := traceKey(u)
		if seen[k.Hi] {
			t.Fatalf("traceKey(%d) repeats a Hi", u)
		}
		seen[k.Hi] = true
	}
}

// TestRunReferencePolicies checks that the reference policies run only when
// named, in the order named, and head their own columns.
func TestRunReferencePolicies(t *testing.T) {
	if got := Policies(); !slices.Equal(got, []string{Ours, LRU, Otter, OPT}) {
		t.Fatalf("Policies() = %v: the default report must keep its columns", got)
	}
	if got := AllPolicies(); !slices.Equal(got, []string{Ours, LRU, Otter, OPT, ARC, SLRU, Clock}) {
		t.Fatalf("AllPolicies() = %v", got)
	}
	// Size 3: 1 is requested twice, then a scan of 2, 3, 4, then 1 again.
	// LRU has lost 1 to the scan; ARC keeps it in T2, SLRU in protected
	// and CLOCK by its reference bit, as OPT does.
	scan := workload("scan", []uint64{1, 1, 2, 3, 4, 1})
	policies := []string{ARC, LRU, SLRU, Clock, OPT}
	want := map[string]int{ARC: 2, LRU: 1, SLRU: 2, Clock: 2, OPT: 2}
	results, err := Run(context.Background(), []Workload{scan}, Options{Sizes: []int{3}, Policies: policies})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(policies) {
		t.Fatalf("Run returned %d results, want %d: %+v", len(results), len(policies), results)
	}
	for i, r := range results {
		if r.Policy != policies[i] || r.Hits != want[r.Policy] || r.Error != "" {
			t.Errorf("result %d: %+v, want %s with %d hits", i, r, policies[i], want[policies[i]])
		}
	}
	var b bytes.Buffer
	if err := WriteTable(&b, results, true); err != nil {
		t.Fatal(err)
	}
	if header, _, _ := strings.Cut(b.String(), "\n"); header != "| trace | size | ARC | LRU | SLRU | CLOCK | OPT |" {
		t.Fatalf("table header %q", header)
	}
}
