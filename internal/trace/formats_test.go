package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// be32 encodes keys as a cache2k trace.
func be32(keys ...uint32) []byte {
	var b []byte
	for _, k := range keys {
		b = binary.BigEndian.AppendUint32(b, k)
	}
	return b
}

// oracleRec is one libCacheSim oracleGeneral record.
type oracleRec struct {
	time uint32
	id   uint64
	size uint32
	next int64
}

func oracle(recs ...oracleRec) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, r.time)
		b = binary.LittleEndian.AppendUint64(b, r.id)
		b = binary.LittleEndian.AppendUint32(b, r.size)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.next))
	}
	return b
}

func readFormat(in []byte, f Format) ([]uint64, error) {
	r, err := NewFormatReader(bytes.NewReader(in), f)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadAll()
}

func TestFormatReaders(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		in     []byte
		want   []uint64
		line   int    // for a *ParseError in a text format
		offset int64  // for a *ParseError in a binary format; -1 for none
		errMsg string // a fragment of the error; "" when none is expected
	}{
		{name: "lirs", format: FormatLIRS, in: []byte("1\n2\n*\n\n3\n*\n"), want: []uint64{1, 2, 3}},
		{name: "lirs crlf", format: FormatLIRS, in: []byte("1\r\n*\r\n2"), want: []uint64{1, 2}},
		{name: "lirs negative", format: FormatLIRS, in: []byte("1\n-2\n"), line: 2, errMsg: "unexpected character '-'"},
		{name: "lirs two stars", format: FormatLIRS, in: []byte("1\n**\n"), line: 2, errMsg: `or "*"`},
		{name: "keys star", format: FormatKeys, in: []byte("1\n*\n"), line: 2, errMsg: "read the file as the lirs format"},
		{name: "arc", format: FormatARC, in: []byte("10 3 0 0\n5 1 0 1\n"), want: []uint64{10, 11, 12, 5}},
		{name: "arc two fields", format: FormatARC, in: []byte("10 2\n"), want: []uint64{10, 11}},
		{name: "arc blanks", format: FormatARC, in: []byte("  10\t 2  x y\r\n"), want: []uint64{10, 11}},
		{name: "arc empty run", format: FormatARC, in: []byte("7 0 0 0\n8 1 0 1\n"), want: []uint64{8}},
		{name: "arc last block", format: FormatARC, in: []byte("18446744073709551615 1 0 0\n"), want: []uint64{math.MaxUint64}},
		{name: "arc past 2^64", format: FormatARC, in: []byte("1 1 0 0\n18446744073709551615 2 0 0\n"), line: 2, errMsg: "past 2^64"},
		{name: "arc one field", format: FormatARC, in: []byte("10 1 0 0\n11\n"), line: 2, errMsg: "only one field"},
		{name: "arc empty line", format: FormatARC, in: []byte("10 1 0 0\n\n"), line: 2, errMsg: "empty line"},
		{name: "arc bad start", format: FormatARC, in: []byte("x1 1 0 0\n"), line: 1, errMsg: "first block: unexpected character 'x'"},
		{name: "arc bad count", format: FormatARC, in: []byte("1 -1 0 0\n"), line: 1, errMsg: "number of blocks: unexpected character '-'"},
		{name: "arc huge count", format: FormatARC, in: []byte("1 4294967296 0 0\n"), line: 1, errMsg: "above the limit of 2147483647"},
		{name: "cache2k", format: FormatCache2k, in: be32(1, 0x01020304, math.MaxUint32), want: []uint64{1, 0x01020304, math.MaxUint32}},
		{name: "cache2k empty", format: FormatCache2k, in: nil, want: nil},
		{name: "cache2k gzip magic is a key", format: FormatCache2k, in: be32(0x1f8b0800), want: []uint64{0x1f8b0800}},
		{name: "cache2k truncated", format: FormatCache2k, in: append(be32(1, 2), 0, 0), offset: 8, errMsg: "ends 2 bytes into a 4-byte record"},
		{name: "oracle", format: FormatOracleGeneral, in: oracle(
			oracleRec{1, 42, 100, 3}, oracleRec{1, math.MaxUint64, 1, -1}, oracleRec{2, 7, 0, -1}, oracleRec{3, 42, 100, -1}),
			want: []uint64{42, math.MaxUint64, 42}},
		{name: "oracle truncated", format: FormatOracleGeneral, in: oracle(oracleRec{1, 42, 1, -1}, oracleRec{1, 43, 1, -1})[:47],
			offset: 24, errMsg: "ends 23 bytes into a 24-byte record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFormat(tt.in, tt.format)
			if tt.errMsg == "" {
				if err != nil || !slices.Equal(got, tt.want) {
					t.Fatalf("read = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.errMsg) {
				t.Fatalf("error = %v; want a *ParseError mentioning %q", err, tt.errMsg)
			}
			if pe.Line != tt.line || pe.Offset != tt.offset || pe.Format != tt.format {
				t.Fatalf("error at line %d, byte %d, format %s; want line %d, byte %d, format %s", pe.Line, pe.Offset, pe.Format, tt.line, tt.offset, tt.format)
			}
			where := "line " + strconv.Itoa(tt.line)
			if tt.format.binary() {
				where = "byte " + strconv.FormatInt(tt.offset, 10)
			}
			if !strings.HasPrefix(err.Error(), where+":") {
				t.Fatalf("error %q does not start with %q", err, where)
			}
		})
	}
}

func TestTextFormatsReadGzip(t *testing.T) {
	for _, c := range []struct {
		f  Format
		in string
	}{{FormatLIRS, "1\n*\n2\n"}, {FormatARC, "1 2 0 0\n"}} {
		got, err := readFormat(gzipped(t, c.in), c.f)
		if err != nil || !slices.Equal(got, []uint64{1, 2}) {
			t.Errorf("%s, gzip: %v, %v", c.f, got, err)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := NewFormatReader(strings.NewReader(""), "csv"); err == nil || !strings.Contains(err.Error(), "choose from keys, lirs, arc, cache2k, oraclegeneral") {
		t.Fatalf("NewFormatReader with an unknown format: %v", err)
	}
	if f, err := ParseFormat(" ARC "); f != FormatARC || err != nil {
		t.Fatalf("ParseFormat(ARC) = %q, %v", f, err)
	}
	if _, err := ParseFormat("auto"); err == nil {
		t.Fatal("ParseFormat(auto) is not a format of the reader")
	}
}

func TestReadLimit(t *testing.T) {
	defer func(n int) { readLimit = n }(readLimit)
	readLimit = 10
	if keys, err := readFormat([]byte("0 10 0 0\n"), FormatARC); err != nil || len(keys) != 10 {
		t.Fatalf("10 requests at a limit of 10: %d keys, %v", len(keys), err)
	}
	// One record may claim more than the limit; it fails at the limit, not
	// after expanding the whole run.
	if _, err := readFormat([]byte("0 2147483647 0 0\n"), FormatARC); !errors.Is(err, ErrTooManyRequests) || !strings.Contains(err.Error(), "more than 10") {
		t.Fatalf("an ARC run beyond the limit: %v", err)
	}
}

func TestDetect(t *testing.T) {
	long := strings.Repeat("123456\n", DetectHead/7+1)[:DetectHead]
	tests := []struct {
		name string
		path string
		head []byte
		want Format
	}{
		{"keys", "cs.trace.gz", []byte("1\n2\n3\n"), FormatKeys},
		{"keys cut short", "x", []byte(long), FormatKeys},
		{"empty", "x", nil, FormatKeys},
		{"lirs breakpoint", "cs.trc", []byte("1\n2\n*\n3\n"), FormatLIRS},
		{"arc by content", "oltp.txt", []byte("\n10 8 0 0\n"), FormatARC},
		{"arc by name", "/tmp/P3.lis.zst", []byte("whatever"), FormatARC},
		{"arc by name, any case", "OLTP.LIS.GZ", nil, FormatARC},
		{"oracle by name", "w106.oracleGeneral.bin.zst", be32(1, 2, 3), FormatOracleGeneral},
		{"oracle by content", "trace.bin", oracle(oracleRec{0, 5, 10, 2}, oracleRec{0, 6, 10, -1}, oracleRec{1, 5, 10, math.MaxInt64}), FormatOracleGeneral},
		{"cache2k", "orm-busy.trace.xz", be32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), FormatCache2k},
		{"cache2k small keys", "web07.trace", be32(0, 0, 0, 0, 0, 0), FormatCache2k},
		{"short binary", "x", []byte{0, 1}, FormatCache2k},
	}
	for _, tt := range tests {
		got, why := Detect(tt.path, tt.head)
		if got != tt.want || why == "" {
			t.Errorf("%s: Detect = %s (%s), want %s", tt.name, got, why, tt.want)
		}
	}
}

// readLimited reads at most n keys; more reports that there were more.
func readLimited(in []byte, f Format, n int) (keys []uint64, more bool, err error) {
	r, err := NewFormatReader(bytes.NewReader(in), f)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	for {
		k, err := r.Next()
		if err == io.EOF {
			return keys, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if len(keys) == n {
			return keys, true, nil
		}
		keys = append(keys, k)
	}
}

// fuzzLimit bounds the keys a fuzz input may expand to (ARC runs).
const fuzzLimit = 1 << 12

// checkAgainst compares a reader with a model that returns the first
// fuzzLimit keys, whether there were more, and where the input goes wrong:
// a line for text formats, an offset for binary ones (-1 if nowhere).
func checkAgainst(t *testing.T, in []byte, f Format, want []uint64, wantMore bool, bad int64) {
	t.Helper()
	Detect("fuzz", in) // must only not panic
	got, more, err := readLimited(in, f, fuzzLimit)
	if bad < 0 || (more && wantMore) {
		if err != nil || !slices.Equal(got, want) || more != wantMore {
			t.Fatalf("%s %q: got %v (more %v), %v; want %v (more %v)", f, in, got, more, err, want, wantMore)
		}
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%s %q: error %v, want a parse error at %d", f, in, err, bad)
	}
	if at := int64(pe.Line); f.binary() && pe.Offset != bad || !f.binary() && at != bad {
		t.Fatalf("%s %q: error %v, want it at %d", f, in, err, bad)
	}
}

// textModel splits s into lines as the text readers do, or returns the
// 1-based number of a line too long.
func textLines(s string) ([]string, int64) {
	if s == "" {
		return nil, -1
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if len(l) > maxLine {
			return lines[:i], int64(i + 1)
		}
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, -1
}

func modelKey(l string) (uint64, bool) {
	if l == "" || strings.ContainsAny(l[:1], "+-") {
		return 0, false
	}
	k, err := strconv.ParseUint(l, 10, 64)
	return k, err == nil
}

func FuzzLIRS(f *testing.F) {
	for _, s := range []string{"", "1\n*\n2\n", "\n\n*\r\n7", "1\n-2\n", "**\n", "18446744073709551616\n", strings.Repeat("9", maxLine+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.HasPrefix(in, []byte{0x1f, 0x8b}) {
			readLimited(in, FormatLIRS, fuzzLimit) // gzip: the model does not know it
			return
		}
		lines, bad := textLines(string(in))
		var want []uint64
		for i, l := range lines {
			if l == "" || l == "*" {
				continue
			}
			k, ok := modelKey(l)
			if !ok {
				bad = int64(i + 1)
				break
			}
			want = append(want, k)
		}
		more := len(want) > fuzzLimit
		if more {
			want = want[:fuzzLimit]
		}
		checkAgainst(t, in, FormatLIRS, want, more, bad)
	})
}

func FuzzARC(f *testing.F) {
	for _, s := range []string{"", "10 3 0 0\n5 1 0 1\n", "1 0\n", "1\n", "1 2147483648\n", "18446744073709551615 2\n", " 3\t2 \r\n", "0 100000 0 0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.HasPrefix(in, []byte{0x1f, 0x8b}) {
			readLimited(in, FormatARC, fuzzLimit)
			return
		}
		lines, bad := textLines(string(in))
		var want []uint64
		more := false
	lines:
		for i, l := range lines {
			fields := strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' })
			if len(fields) < 2 {
				bad = int64(i + 1)
				break
			}
			start, ok1 := modelKey(fields[0])
			n, ok2 := modelKey(fields[1])
			if !ok1 || !ok2 || n > math.MaxInt32 || n > 0 && start+(n-1) < start {
				bad = int64(i + 1)
				break
			}
			for j := range n {
				if len(want) == fuzzLimit {
					more = true
					break lines
				}
				want = append(want, start+j)
			}
		}
		checkAgainst(t, in, FormatARC, want, more, bad)
	})
}

func FuzzCache2k(f *testing.F) {
	f.Add([]byte{})
	f.Add(be32(1, 2, 3))
	f.Add(append(be32(0x1f8b0800), 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		var want []uint64
		for i := 0; i+4 <= len(in) && len(want) < fuzzLimit; i += 4 {
			want = append(want, uint64(binary.BigEndian.Uint32(in[i:])))
		}
		bad := int64(-1)
		if len(in)%4 != 0 {
			bad = int64(len(in) / 4 * 4)
		}
		checkAgainst(t, in, FormatCache2k, want, len(in)/4 > fuzzLimit, bad)
	})
}

func FuzzOracleGeneral(f *testing.F) {
	f.Add([]byte{})
	f.Add(oracle(oracleRec{1, 42, 100, 3}, oracleRec{2, 7, 0, -1}, oracleRec{3, 42, 100, -1}))
	f.Add(oracle(oracleRec{1, 42, 1, -1})[:23])
	f.Fuzz(func(t *testing.T, in []byte) {
		var want []uint64
		n := 0
		for i := 0; i+oracleRecord <= len(in); i += oracleRecord {
			if binary.LittleEndian.Uint32(in[i+12:]) != 0 {
				n++
				if len(want) < fuzzLimit {
					want = append(want, binary.LittleEndian.Uint64(in[i+4:]))
				}
			}
		}
		bad := int64(-1)
		if len(in)%oracleRecord != 0 {
			bad = int64(len(in) / oracleRecord * oracleRecord)
		}
		checkAgainst(t, in, FormatOracleGeneral, want, n > fuzzLimit, bad)
	})
}
