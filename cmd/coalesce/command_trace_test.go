package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coalesce-go/coalesce/cmd/coalesce/internal/replay"
)

func TestParseTraceFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		workloads []string
		sizes     []int
		policies  []string
		json      bool
		errText   string // "" if the arguments are valid
	}{
		{name: "flags after workloads", args: []string{"zipf:0.9", "loop:10", "--sizes", "10,1_000", "--json"},
			workloads: []string{"zipf:0.9", "loop:10"}, sizes: []int{10, 1000}, json: true},
		{name: "flags before and between", args: []string{"-sizes=5", "zipf:0.9", "-policies", "lru, OPT", "zipf:1.2"},
			workloads: []string{"zipf:0.9", "zipf:1.2"}, sizes: []int{5}, policies: []string{"lru", "opt"}},
		{name: "double dash", args: []string{"--json", "--", "zipf:0.9"}, workloads: []string{"zipf:0.9"}, json: true},
		{name: "no workload", args: []string{"--json"}, errText: "no workload given"},
		{name: "bad size", args: []string{"zipf:0.9", "--sizes", "10,abc"}, errText: `"abc" is not a cache size`},
		{name: "zero size", args: []string{"zipf:0.9", "--sizes", "0"}, errText: `"0" is not a cache size`},
		{name: "negative size", args: []string{"zipf:0.9", "--sizes", "-5"}, errText: `"-5" is not a cache size`},
		{name: "empty size", args: []string{"zipf:0.9", "--sizes", "10,"}, errText: `"" is not a cache size`},
		{name: "bad policy", args: []string{"zipf:0.9", "--policies", "fifo"}, errText: `unknown policy "fifo"`},
		{name: "bad workload", args: []string{"zipf:x"}, errText: "skew"},
		{name: "unknown synthetic", args: []string{"uniform:5"}, errText: "synthetic workloads are"},
		{name: "twice", args: []string{"zipf:0.9", "zipf:0.9"}, errText: "given twice"},
		{name: "unknown flag", args: []string{"zipf:0.9", "--size", "5"}, errText: "flag provided but not defined"},
		{name: "negative parallel", args: []string{"zipf:0.9", "--parallel", "-1"}, errText: "--parallel -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			tf, err := parseTraceFlags(tt.args, &stderr)
			if tt.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("parseTraceFlags(%q) error = %v, want one mentioning %q", tt.args, err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, w := range tf.workloads {
				names = append(names, w.Name)
			}
			policies := tt.policies
			if policies == nil {
				policies = replay.Policies()
			}
			if strings.Join(names, " ") != strings.Join(tt.workloads, " ") ||
				!slices.Equal(tf.opts.Sizes, tt.sizes) ||
				strings.Join(tf.opts.Policies, ",") != strings.Join(policies, ",") || tf.json != tt.json {
				t.Fatalf("parseTraceFlags(%q) = workloads %v, sizes %v, policies %v, json %v", tt.args, names, tf.opts.Sizes, tf.opts.Policies, tf.json)
			}
		})
	}
}

// writeTrace writes keys as a gzip trace file in a temporary directory.
func writeTrace(t *testing.T, name string, keys string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write([]byte(keys)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTraceEndToEnd drives the command as main does, on a trace whose LRU
// and OPT hit counts are worked out by hand.
func TestTraceEndToEnd(t *testing.T) {
	// 1 2 3 cycled three times. Size 2: LRU always evicts the key needed
	// next (0 hits), OPT keeps 1 and 2 and lets 3 pass (4 hits). Size 3:
	// both hit every request after the first pass (6 hits).
	path := writeTrace(t, "tiny.trace.gz", "1\n2\n3\n1\n2\n3\n1\n2\n3\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"trace", path, "--sizes", "2,3", "--policies", "lru,opt", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var results []replay.Result
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout.String())
	}
	want := []replay.Result{
		{Trace: "tiny", Size: 2, Policy: "lru", Hits: 0, HitRatio: 0, Requests: 9, Distinct: 3},
		{Trace: "tiny", Size: 2, Policy: "opt", Hits: 4, HitRatio: 4.0 / 9, Requests: 9, Distinct: 3},
		{Trace: "tiny", Size: 3, Policy: "lru", Hits: 6, HitRatio: 6.0 / 9, Requests: 9, Distinct: 3},
		{Trace: "tiny", Size: 3, Policy: "opt", Hits: 6, HitRatio: 6.0 / 9, Requests: 9, Distinct: 3},
	}
	if !slices.Equal(results, want) {
		t.Fatalf("results = %+v\nwant %+v", results, want)
	}

	stdout.Reset()
	stderr.Reset()
	charts := filepath.Join(t.TempDir(), "charts")
	if code := run([]string{"trace", "--sizes", "2,3", "--chart", charts, path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "trace size ours LRU otter OPT ours−LRU" {
		t.Fatalf("table header = %q", lines[0])
	}
	for i, want := range [][]string{{"tiny", "2", "0.00", "44.44"}, {"tiny", "3", "66.67", "66.67"}} {
		f := strings.Fields(lines[i+1])
		if len(f) != 7 || f[0] != want[0] || f[1] != want[1] || f[3] != want[2] || f[5] != want[3] {
			t.Fatalf("table row %d = %q, want trace %s, size %s, LRU %s, OPT %s", i+1, lines[i+1], want[0], want[1], want[2], want[3])
		}
	}
	if !strings.Contains(stderr.String(), "replayed tiny: 9 requests, 3 distinct keys") {
		t.Errorf("stderr lacks progress: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(charts, "tiny.png")); err != nil {
		t.Errorf("--chart wrote no tiny.png: %v", err)
	}
}

func TestTraceBadInput(t *testing.T) {
	bad := writeTrace(t, "bad.trace.gz", "1\n2\nthree\n")
	tests := []struct {
		args    []string
		code    int
		errText string
	}{
		{[]string{"trace", bad}, 1, "line 3: unexpected character 't'"},
		{[]string{"trace", "zipf:2:10:0"}, 1, "REQUESTS"},
		{[]string{"trace"}, 1, "no workload given"},
		{[]string{"trace", "-h"}, 0, "scan-zipf:S"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.errText) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr.String(), tt.code, tt.errText)
		}
	}
}
