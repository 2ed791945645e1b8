// Package trace reads cache access traces, generates synthetic ones, and
// computes the two bounds every hit ratio is reported beside: an exact LRU and
// Belady's optimal (OPT).
//
// A trace is a sequence of uint64 keys, one request each, replayed in order.
// The project's own format (FormatKeys) is text with one unsigned decimal
// key per line, usually gzip-compressed; the reader detects compression from
// the content, so a caller never says which it is. The formats the public traces
// are published in are read too (see Format); a caller that has other
// compressions to undo does so before handing the reader its input.
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

// ErrSyntax is matched (with errors.Is) by every error about malformed
// input; the *ParseError that wraps it says where and why.
var ErrSyntax = errors.New("malformed trace")

// ParseError reports input that does not follow its trace format: a line of
// a text format, or a record of a binary one.
type ParseError struct {
	Format Format // FormatKeys when the reader was made by NewReader
	Line   int    // 1-based line number, in text formats; 0 in binary ones
	Offset int64  // byte offset of the record in the uncompressed input, in binary formats
	Text   string // the offending line, shortened if long; empty in binary formats
	Reason string // what is wrong with it
}

func (e *ParseError) Error() string {
	f := e.Format
	if f == "" {
		f = FormatKeys
	}
	if e.Line == 0 && f.binary() {
		return fmt.Sprintf("byte %d: %s; %s", e.Offset, e.Reason, f.rule())
	}
	return fmt.Sprintf("line %d: %s (%q); %s", e.Line, e.Reason, e.Text, f.rule())
}

// Unwrap makes a ParseError match ErrSyntax.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Reader streams the keys of a trace without holding it in memory: it
// buffers one line of a text format (at most maxLine bytes) or one record of
// a binary one. It is not safe for concurrent use.
type Reader struct {
	br     *bufio.Reader
	gz     *gzip.Reader // nil unless the reader undid gzip itself
	format Format
	line   int   // lines read, in text formats
	off    int64 // bytes read, in binary formats
	rec    [oracleRecord]byte
	// An ARC record names a run of blocks; these are the ones still to come.
	block, left uint64
	err         error // sticky: once a read fails, every later call fails the same way
}

// NewReader returns a Reader of a trace in the keys format, which may be
// gzip-compressed or plain text; it fails only if r starts with a gzip
// header that is broken.
func NewReader(r io.Reader) (*Reader, error) {
	return NewFormatReader(r, FormatKeys)
}

// NewFormatReader returns a Reader of r in format f. For the text formats r
// may be gzip-compressed, detected from the content as NewReader does; the
// binary formats are read as given, since a record may start with any
// bytes, gzip's magic number among them.
func NewFormatReader(r io.Reader, f Format) (*Reader, error) {
	if !f.valid() {
		return nil, fmt.Errorf("unknown trace format %q: choose from %s", string(f), formatList())
	}
	br := bufio.NewReaderSize(r, 64<<10)
	t := &Reader{format: f}
	if !f.binary() {
		if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			gz, err := gzip.NewReader(br)
			if err != nil {
				return nil, fmt.Errorf("reading gzip header: %w", err)
			}
			// Concatenated gzip members are one stream, as gunzip treats them.
			t.gz = gz
			br = bufio.NewReaderSize(gz, 64<<10)
		}
	}
	t.br = br
	return t, nil
}

// Format returns the format the reader decodes.
func (t *Reader) Format() Format { return t.format }

// Next returns the next key, or io.EOF after the last one. Malformed input
// yields a *ParseError. In the text formats a final line without a newline
// is accepted and a trailing "\r" is ignored, so files written on Windows
// read the same.
func (t *Reader) Next() (uint64, error) {
	if t.err != nil {
		return 0, t.err
	}
	var k uint64
	var err error
	switch t.format {
	case FormatKeys:
		k, err = t.nextKey()
	case FormatLIRS:
		k, err = t.nextLIRS()
	case FormatARC:
		k, err = t.nextARC()
	case FormatCache2k:
		k, err = t.nextCache2k()
	case FormatOracleGeneral:
		k, err = t.nextOracle()
	}
	if err != nil {
		t.err = err
	}
	return k, err
}

// readLine returns the next line without its line ending, or io.EOF.
func (t *Reader) readLine() ([]byte, error) {
	b, err := t.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(b) == 0:
		return nil, io.EOF
	case err != nil && err != io.EOF && err != bufio.ErrBufferFull:
		return nil, fmt.Errorf("reading line %d: %w", t.line+1, err)
	}
	t.line++
	b = bytes.TrimSuffix(b, []byte{'\n'})
	if len(b) > maxLine || err == bufio.ErrBufferFull {
		return nil, t.lineError(b, fmt.Sprintf("line longer than %d bytes", maxLine))
	}
	return bytes.TrimSuffix(b, []byte{'\r'}), nil
}

func (t *Reader) lineError(b []byte, reason string) *ParseError {
	return &ParseError{Format: t.format, Line: t.line, Text: shorten(b), Reason: reason}
}

func (t *Reader) nextKey() (uint64, error) {
	b, err := t.readLine()
	if err != nil {
		return 0, err
	}
	if len(b) == 1 && b[0] == '*' {
		return 0, t.lineError(b, `"*" is a LIRS breakpoint, not a key: read the file as the lirs format`)
	}
	k, reason := parseKey(b)
	if reason != "" {
		return 0, t.lineError(b, reason)
	}
	return k, nil
}

// parseKey is strconv.ParseUint without the string conversion, which would
// allocate once per request on traces of millions of lines. It returns why b
// is not a key, or "".
func parseKey(b []byte) (uint64, string) {
	if len(b) == 0 {
		return 0, "empty line"
	}
	var k uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Sprintf("unexpected character %q", c)
		}
		d := uint64(c - '0')
		if k > (1<<64-1-d)/10 {
			return 0, "key overflows uint64"
		}
		k = k*10 + d
	}
	return k, ""
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

// MaxRequests bounds the keys ReadAll and ReadFile return: the replay holds
// every request in memory, 8 bytes each plus its bookkeeping, so a larger
// trace (or an ARC record that claims billions of blocks) is refused rather
// than read until the machine runs out of memory. It is the bound the
// synthetic workloads have; the largest trace the docs measure has 5.3
// million requests.
const MaxRequests = maxRequests

// ErrTooManyRequests is matched by the error of a trace longer than
// MaxRequests.
var ErrTooManyRequests = errors.New("too many requests")

// readLimit is MaxRequests, lowered by tests that check the limit.
var readLimit = MaxRequests

// ReadAll returns every key r holds, in order, reading it in the keys
// format.
func ReadAll(r io.Reader) ([]uint64, error) {
	t, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.ReadAll()
}

// ReadAll returns the keys the reader has left, in order; it fails beyond
// MaxRequests keys.
func (t *Reader) ReadAll() ([]uint64, error) {
	var keys []uint64
	for {
		k, err := t.Next()
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		if len(keys) == readLimit {
			return nil, fmt.Errorf("%w: more than %d, the most a replay holds in memory (trace.MaxRequests); replay a prefix of the trace", ErrTooManyRequests, readLimit)
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
