// Package trace reads cache access traces, generates synthetic ones, and
// computes the two bounds every hit ratio is reported beside: an exact LRU and
// Belady's optimal (OPT).
//
// A trace is a sequence of uint64 keys, one request each, replayed in order.
// The file format is text with one unsigned decimal key per line, usually
// gzip-compressed; the reader detects compression from the content, so a
// caller never says which it is.
package trace

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxLine bounds the bytes the reader buffers for one line. A key has at
// most 20 digits, so anything longer is an error anyway; the bound only keeps
// a corrupt file without newlines from being read into memory whole.
const maxLine = 4096

// ErrSyntax is matched (with errors.Is) by every error about a malformed
// line; the *ParseError that wraps it says which line and why.
var ErrSyntax = errors.New("malformed trace line")

// ParseError reports a line of a trace that is not one unsigned decimal key.
type ParseError struct {
	Line   int    // 1-based line number
	Text   string // the offending line, shortened if long
	Reason string // what is wrong with it
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d: %s (%q); each line must be one unsigned decimal integer below 2^64", e.Line, e.Reason, e.Text)
}

// Unwrap makes a ParseError match ErrSyntax.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Reader streams the keys of a trace without holding it in memory. It is not
// safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	gz   *gzip.Reader // nil for plain text
	line int
	err  error // sticky: once a line fails, every later call fails the same way
}

// NewReader returns a Reader of r, which may hold gzip-compressed or plain
// text; it fails only if r starts with a gzip header that is broken.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	t := &Reader{}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip header: %w", err)
		}
		// Concatenated gzip members are one stream, as gunzip treats them.
		t.gz = gz
		br = bufio.NewReaderSize(gz, 64<<10)
	}
	t.br = br
	return t, nil
}

// Next returns the next key, or io.EOF after the last one. A line that is
// not a key yields a *ParseError; a final line without a newline is accepted
// and a trailing "\r" is ignored, so files written on Windows read the same.
func (t *Reader) Next() (uint64, error) {
	if t.err != nil {
		return 0, t.err
	}
	k, err := t.next()
	if err != nil {
		t.err = err
	}
	return k, err
}

func (t *Reader) next() (uint64, error) {
	b, err := t.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(b) == 0:
		return 0, io.EOF
	case err != nil && err != io.EOF && err != bufio.ErrBufferFull:
		return 0, fmt.Errorf("reading line %d: %w", t.line+1, err)
	}
	t.line++
	b = bytes.TrimSuffix(b, []byte{'\n'})
	if len(b) > maxLine || err == bufio.ErrBufferFull {
		return 0, &ParseError{Line: t.line, Text: shorten(b), Reason: fmt.Sprintf("line longer than %d bytes", maxLine)}
	}
	b = bytes.TrimSuffix(b, []byte{'\r'})
	return parseKey(b, t.line)
}

// parseKey is strconv.ParseUint without the string conversion, which would
// allocate once per request on traces of millions of lines.
func parseKey(b []byte, line int) (uint64, error) {
	if len(b) == 0 {
		return 0, &ParseError{Line: line, Text: "", Reason: "empty line"}
	}
	var k uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, &ParseError{Line: line, Text: shorten(b), Reason: fmt.Sprintf("unexpected character %q", c)}
		}
		d := uint64(c - '0')
		if k > (1<<64-1-d)/10 {
			return 0, &ParseError{Line: line, Text: shorten(b), Reason: "key overflows uint64"}
		}
		k = k*10 + d
	}
	return k, nil
}

func shorten(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// Close releases the decompressor; it does not close the underlying reader.
func (t *Reader) Close() error {
	if t.gz != nil {
		return t.gz.Close()
	}
	return nil
}

// ReadAll returns every key r holds, in order.
func ReadAll(r io.Reader) ([]uint64, error) {
	t, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	var keys []uint64
	for {
		k, err := t.Next()
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
}

// ReadFile returns every key of the trace file at path, in order; errors
// name the file.
func ReadFile(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keys, err := ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	return keys, nil
}
