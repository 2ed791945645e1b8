package trace

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadAll(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []uint64
		errLine int    // 0: no error expected
		errText string // a fragment of the error
	}{
		{name: "empty file", in: "", want: nil},
		{name: "one key", in: "42\n", want: []uint64{42}},
		{name: "no final newline", in: "1\n2", want: []uint64{1, 2}},
		{name: "crlf", in: "1\r\n2\r\n", want: []uint64{1, 2}},
		{name: "zero and max", in: "0\n18446744073709551615\n", want: []uint64{0, 1<<64 - 1}},
		{name: "leading zeros", in: "007\n", want: []uint64{7}},
		{name: "empty line", in: "1\n\n2\n", errLine: 2, errText: "empty line"},
		{name: "blank crlf line", in: "1\r\n\r\n", errLine: 2, errText: "empty line"},
		{name: "overflow", in: "18446744073709551616\n", errLine: 1, errText: "overflows"},
		{name: "far overflow", in: "99999999999999999999999\n", errLine: 1, errText: "overflows"},
		{name: "negative", in: "1\n-1\n", errLine: 2, errText: "unexpected character '-'"},
		{name: "space", in: "1 \n", errLine: 1, errText: "unexpected character ' '"},
		{name: "letters", in: "1\n2\nabc\n", errLine: 3, errText: "unexpected character 'a'"},
		{name: "lone cr", in: "1\r2\n", errLine: 1, errText: "unexpected character '\\r'"},
		{name: "too long", in: strings.Repeat("1", maxLine+10) + "\n", errLine: 1, errText: "longer than"},
	}
	for _, tt := range tests {
		for _, compress := range []bool{false, true} {
			name := tt.name
			in := []byte(tt.in)
			if compress {
				name += "/gzip"
				in = gzipped(t, tt.in)
			}
			t.Run(name, func(t *testing.T) {
				got, err := ReadAll(bytes.NewReader(in))
				if tt.errLine == 0 {
					if err != nil {
						t.Fatalf("ReadAll: %v", err)
					}
					if !slices.Equal(got, tt.want) {
						t.Fatalf("ReadAll = %v, want %v", got, tt.want)
					}
					return
				}
				var pe *ParseError
				if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
					t.Fatalf("ReadAll error = %v, want a *ParseError", err)
				}
				if pe.Line != tt.errLine || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("ReadAll error = %q (line %d), want line %d mentioning %q", err, pe.Line, tt.errLine, tt.errText)
				}
			})
		}
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	r, err := NewReader(strings.NewReader("x\n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("Next after an error = %v, want the same error %v", err2, err1)
	}
}

func TestBrokenGzip(t *testing.T) {
	full := gzipped(t, "1\n2\n3\n")
	if _, err := ReadAll(bytes.NewReader(full[:5])); err == nil {
		t.Fatal("ReadAll of a truncated gzip header succeeded")
	}
	if _, err := ReadAll(bytes.NewReader(full[:len(full)-4])); err == nil || errors.Is(err, ErrSyntax) {
		t.Fatalf("ReadAll of a truncated gzip stream = %v, want an I/O error", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	var want []uint64
	for i := range 10000 {
		k := uint64(i) * 2654435761
		want = append(want, k)
		sb.WriteString(strconv.FormatUint(k, 10) + "\n")
	}
	path := filepath.Join(dir, "t.trace.gz")
	if err := os.WriteFile(path, gzipped(t, sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatal("ReadFile returned different keys than were written")
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("ReadFile of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("1\nx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("ReadFile error = %v, want the path and line 2", err)
	}
}

// FuzzReader checks the reader against a straightforward model built on
// strings.Split and strconv, on plain and compressed input.
func FuzzReader(f *testing.F) {
	for _, s := range []string{"", "1\n", strings.Repeat("0", maxLine) + "1\n", "0\r\n18446744073709551615", "1\n\n", "-3\n", "18446744073709551616\n", "12a\n", "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantLine := model(string(in))
		for i, data := range [][]byte{in, gzipped(t, string(in))} {
			got, err := ReadAll(bytes.NewReader(data))
			if i == 0 && bytes.HasPrefix(in, []byte{0x1f, 0x8b}) {
				continue // read as gzip, which the model does not know; it must only not panic
			}
			if wantLine == 0 {
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("ReadAll(%q) = %v, %v; want %v", in, got, err, want)
				}
				continue
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != wantLine {
				t.Fatalf("ReadAll(%q) error = %v, want a parse error on line %d", in, err, wantLine)
			}
		}
	})
}

// model parses s as the format says, returning the keys or the 1-based
// number of the first bad line.
func model(s string) ([]uint64, int) {
	if s == "" {
		return nil, 0
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var keys []uint64
	for i, l := range lines {
		if len(l) > maxLine {
			return nil, i + 1
		}
		l = strings.TrimSuffix(l, "\r")
		if l == "" || strings.ContainsAny(l[:1], "+-") {
			return nil, i + 1
		}
		k, err := strconv.ParseUint(l, 10, 64)
		if err != nil {
			return nil, i + 1
		}
		keys = append(keys, k)
	}
	return keys, 0
}

func TestNextAfterEOF(t *testing.T) {
	r, err := NewReader(strings.NewReader("5"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := r.Next(); k != 5 || err != nil {
		t.Fatalf("Next = %d, %v; want 5", k, err)
	}
	for range 2 {
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("Next at the end = %v, want io.EOF", err)
		}
	}
}
