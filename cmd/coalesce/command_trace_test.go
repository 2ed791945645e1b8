package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

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

// compress returns b as the named compression would store it.
func compress(t *testing.T, kind string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case "":
		return b
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "zstd":
		w, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTraceFormats replays the trace of TestTraceEndToEnd (1 2 3, three
// times) written in each published format, compressed as its publisher
// ships it, and checks that auto detects the format and says so.
func TestTraceFormats(t *testing.T) {
	var cache2k, oracle []byte
	for range 3 {
		for k := range uint32(3) {
			cache2k = binary.BigEndian.AppendUint32(cache2k, k+1)
			oracle = binary.LittleEndian.AppendUint32(oracle, 7)             // time
			oracle = binary.LittleEndian.AppendUint64(oracle, uint64(k+1))   // object id
			oracle = binary.LittleEndian.AppendUint32(oracle, 4096)          // size
			oracle = binary.LittleEndian.AppendUint64(oracle, math.MaxInt64) // next access
		}
	}
	// A record of size 0 is skipped, as libCacheSim skips it.
	oracle = append(oracle, make([]byte, 24)...)
	tests := []struct {
		file, compression string
		content           []byte
		format            string // what auto must pick
		flag              string // --format given, if any
	}{
		{file: "keys.trace", content: []byte("1\n2\n3\n1\n2\n3\n1\n2\n3\n"), format: "keys"},
		{file: "cs.trace.gz", compression: "gzip", content: []byte("1\n2\n3\n*\n1\n2\n3\n1\n2\n3\n*\n"), format: "lirs"},
		{file: "cs2.trace.gz", compression: "gzip", content: []byte("1\n2\n3\n\n1\n2\n3\n1\n2\n3\n"), format: "keys", flag: "LIRS"},
		{file: "OLTP.lis.zst", compression: "zstd", content: []byte("1 3 0 0\n1 3 0 1\n1 3 0 2\n"), format: "arc"},
		{file: "oltp.txt", content: []byte("1 3 0 0\n1 3 0 1\n1 3 0 2\n"), format: "arc"},
		{file: "web07.trace.xz", compression: "xz", content: cache2k, format: "cache2k"},
		{file: "w106.oracleGeneral.bin.zst", compression: "zstd", content: oracle, format: "oraclegeneral"},
		{file: "mystery.bin", content: oracle, format: "oraclegeneral"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, compress(t, tt.compression, tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"trace", path, "--sizes", "2,3", "--policies", "lru,opt", "--json"}
			if tt.flag != "" {
				args = append(args, "--format", tt.flag)
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var results []replay.Result
			if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
				t.Fatalf("--json output is not JSON: %v\n%s", err, stdout.String())
			}
			var hits []int
			for _, r := range results {
				if r.Requests != 9 || r.Distinct != 3 {
					t.Fatalf("result %+v: want 9 requests of 3 keys", r)
				}
				hits = append(hits, int(r.Hits))
			}
			if !slices.Equal(hits, []int{0, 4, 6, 6}) {
				t.Fatalf("hits (LRU, OPT at sizes 2 and 3) = %v, want [0 4 6 6]", hits)
			}
			note := "read as " + tt.format + " (--format auto:"
			if got := strings.Contains(stderr.String(), note); got != (tt.flag == "") {
				t.Fatalf("stderr %q: mentions %q %v, want %v", stderr.String(), note, got, tt.flag == "")
			}
		})
	}
}

// TestTraceOddFlags gives the command odd values: each is refused with one
// line that says what is wrong, or is accepted on purpose, and either way
// the command ends within seconds.
func TestTraceOddFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tiny := writeTrace(t, "tiny.trace.gz", "1\n2\n3\n1\n")
	empty := write("empty.trace", nil)
	bz := write("x.trace.bz2", []byte("BZh91AY&SY"))
	brokenXZ := write("x.trace.xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3})
	truncated := write("cut.trace", []byte{0, 0, 0, 1, 0, 0, 0, 2, 0, 0})
	noPerm := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(noPerm, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(noPerm, 0o755) })
	z := "zipf:0.9:100:1000"
	tests := []struct {
		name     string
		args     []string
		errText  string // "" when the arguments are accepted
		userOnly bool   // the case does not hold for root, who reads anything
	}{
		{name: "size 0", args: []string{z, "--sizes", "0"}, errText: `"0" is not a cache size`},
		{name: "negative size", args: []string{z, "--sizes", "-5"}, errText: `"-5" is not a cache size`},
		{name: "size in float notation", args: []string{z, "--sizes", "1e12"}, errText: `"1e12" is not a cache size`},
		{name: "absurd size", args: []string{z, "--sizes", "1000000000000"}, errText: "above the largest cache size, 268435456 entries (trace.MaxRequests"},
		{name: "size beyond uint64", args: []string{z, "--sizes", "99999999999999999999999"}, errText: "above the largest cache size"},
		{name: "size one above the limit", args: []string{z, "--sizes", "268435457"}, errText: "above the largest cache size"},
		// A cache larger than the workload never evicts; it is allowed up to
		// the limit, and costs the store 1.5 s and 190 MB at the limit.
		{name: "largest size", args: []string{z, "--sizes", "268435456", "--policies", "lru,opt"}},
		{name: "unknown format", args: []string{tiny, "--format", "csv"}, errText: `--format: unknown format "csv": choose from auto, keys, lirs, arc, cache2k, oraclegeneral`},
		{name: "empty format", args: []string{tiny, "--format", ""}, errText: `unknown format ""`},
		{name: "format in capitals", args: []string{tiny, "--format", "KEYS"}},
		{name: "format for synthetic workloads only", args: []string{z, "--format", "arc"}},
		{name: "missing file", args: []string{filepath.Join(dir, "nope.trace.gz")}, errText: "no such file (stat "},
		{name: "directory", args: []string{dir}, errText: "a directory, not a trace file"},
		{name: "unreadable directory", args: []string{filepath.Join(noPerm, "t.gz")}, errText: "cannot read it", userOnly: true},
		{name: "device", args: []string{os.DevNull}, errText: "not a regular file"},
		{name: "empty file", args: []string{empty}, errText: "the workload has no requests"},
		{name: "bzip2", args: []string{bz}, errText: "bzip2-compressed, which is not read"},
		{name: "broken xz", args: []string{brokenXZ}, errText: "xz-compressed, but"},
		{name: "truncated binary", args: []string{truncated}, errText: "byte 8: the input ends 2 bytes into a 4-byte record"},
		{name: "binary read as arc", args: []string{truncated, "--format", "arc"}, errText: "line 1: "},
		{name: "unknown flag", args: []string{z, "--size", "5"}, errText: "flag provided but not defined: -size (see coalesce trace -h)"},
		{name: "absurd parallel", args: []string{z, "--parallel", "1e12"}, errText: `invalid value "1e12" for flag -parallel`},
		{name: "negative parallel", args: []string{z, "--parallel", "-3"}, errText: "--parallel -3 is not allowed"},
		// More replays at once than there are replays only idles the limit.
		{name: "huge parallel", args: []string{z, "--parallel", "1000000", "--sizes", "10"}},
		{name: "negative seed", args: []string{z, "--seed", "-1"}, errText: `invalid value "-1" for flag -seed`},
		{name: "empty policy", args: []string{z, "--policies", ""}, errText: `unknown policy ""`},
		{name: "chart into a file", args: []string{z, "--sizes", "10", "--chart", tiny}, errText: "tiny.trace.gz"},
		{name: "no workload", args: []string{"--sizes", "10"}, errText: "no workload given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.userOnly && os.Geteuid() == 0 {
				t.Skip("root reads what permissions forbid")
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(append([]string{"trace", "--quiet"}, tt.args...), &stdout, &stderr)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if tt.errText == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				return
			}
			msg := stderr.String()
			if code == 0 || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "coalesce trace: ") || !strings.Contains(msg, tt.errText) {
				t.Fatalf("exit %d, stderr %q; want a non-zero exit and one line mentioning %q", code, msg, tt.errText)
			}
		})
	}
}
