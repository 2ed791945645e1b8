package trace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
)

// Format names a trace file layout. The public traces that hit ratios are
// reported on are published in the layouts of the tools that first used
// them; each reader here follows the reader of Caffeine's simulator
// (com.github.benmanes.caffeine.cache.simulator.parser) or libCacheSim, so
// that a trace replays here as it does there.
type Format string

const (
	// FormatKeys is the project's own format: text, one unsigned decimal key per
	// line; an empty line is an error.
	FormatKeys Format = "keys"
	// FormatLIRS is the format of the LIRS paper's traces (Jiang and Zhang, 2002)
	// as Caffeine's simulator ships them: one unsigned decimal block number
	// per line. A line "*" is a breakpoint at which the LIRS authors'
	// simulator prints its state, and is skipped, as are empty lines.
	FormatLIRS Format = "lirs"
	// FormatARC is the format of the ARC paper's traces (Megiddo and Modha, 2003):
	// text lines "START COUNT IGNORED REQUEST", each a read of COUNT
	// consecutive 512-byte blocks from block START, replayed as COUNT
	// requests START, START+1, ... Fields after the second are not read.
	FormatARC Format = "arc"
	// FormatCache2k is the format of cache2k's benchmark traces: binary, one
	// 4-byte big-endian integer per request (Java's DataOutputStream).
	FormatCache2k Format = "cache2k"
	// FormatOracleGeneral is libCacheSim's binary format, in which its public
	// traces are distributed: packed little-endian 24-byte records of
	// uint32 timestamp, uint64 object id, uint32 object size and int64 next
	// access time. The object id is the key. Records of size 0 are skipped,
	// as libCacheSim skips them by default (they are misses or deletes in
	// key-value traces, not reads of an object).
	FormatOracleGeneral Format = "oraclegeneral"
)

var allFormats = []Format{FormatKeys, FormatLIRS, FormatARC, FormatCache2k, FormatOracleGeneral}

// Formats returns every format, in a fixed order.
func Formats() []Format { return append([]Format(nil), allFormats...) }

// ParseFormat returns the format named s, ignoring case.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if !f.valid() {
		return "", fmt.Errorf("unknown trace format %q: choose from %s", s, formatList())
	}
	return f, nil
}

func formatList() string {
	names := make([]string, len(allFormats))
	for i, f := range allFormats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

func (f Format) valid() bool {
	for _, g := range allFormats {
		if f == g {
			return true
		}
	}
	return false
}

func (f Format) binary() bool { return f == FormatCache2k || f == FormatOracleGeneral }

// rule is what every line or record of f must be, for error messages.
func (f Format) rule() string {
	switch f {
	case FormatLIRS:
		return `each line of a LIRS trace must be one unsigned decimal integer below 2^64, or "*"`
	case FormatARC:
		return "each line of an ARC trace must start with two unsigned decimal integers, the first block and the number of blocks"
	case FormatCache2k:
		return "a cache2k trace is a sequence of 4-byte big-endian integers"
	case FormatOracleGeneral:
		return fmt.Sprintf("an oracleGeneral trace is a sequence of %d-byte records", oracleRecord)
	}
	return "each line must be one unsigned decimal integer below 2^64"
}

func (t *Reader) nextLIRS() (uint64, error) {
	for {
		b, err := t.readLine()
		if err != nil {
			return 0, err
		}
		if len(b) == 0 || len(b) == 1 && b[0] == '*' {
			continue
		}
		k, reason := parseKey(b)
		if reason != "" {
			return 0, t.lineError(b, reason)
		}
		return k, nil
	}
}

// maxARCBlocks is the longest run one ARC record may name. Caffeine parses
// the count as a Java int, so no published trace exceeds it; MaxRequests
// bounds what a file of many such records may add up to.
const maxARCBlocks = math.MaxInt32

func (t *Reader) nextARC() (uint64, error) {
	for t.left == 0 {
		b, err := t.readLine()
		if err != nil {
			return 0, err
		}
		start, rest, ok := field(b)
		if !ok {
			return 0, t.lineError(b, "empty line")
		}
		count, _, ok := field(rest)
		if !ok {
			return 0, t.lineError(b, "only one field, want the first block and the number of blocks")
		}
		first, reason := parseKey(start)
		if reason != "" {
			return 0, t.lineError(b, "first block: "+reason)
		}
		n, reason := parseKey(count)
		switch {
		case reason != "":
			return 0, t.lineError(b, "number of blocks: "+reason)
		case n > maxARCBlocks:
			return 0, t.lineError(b, fmt.Sprintf("number of blocks %d is above the limit of %d", n, maxARCBlocks))
		case n > 0 && first > math.MaxUint64-(n-1):
			return 0, t.lineError(b, "the blocks run past 2^64")
		}
		t.block, t.left = first, n
	}
	k := t.block
	t.block++
	t.left--
	return k, nil
}

// field returns the first field of b, separated by spaces or tabs, and what
// follows it. Caffeine splits on single spaces; runs of blanks are accepted
// here too, since they cannot mean anything else.
func field(b []byte) (f, rest []byte, ok bool) {
	b = bytes.TrimLeft(b, " \t")
	if len(b) == 0 {
		return nil, nil, false
	}
	end := bytes.IndexAny(b, " \t")
	if end < 0 {
		return b, nil, true
	}
	return b[:end], b[end:], true
}

// readRecord fills p from the input: io.EOF at a record boundary, a
// *ParseError inside one.
func (t *Reader) readRecord(p []byte) error {
	n, err := io.ReadFull(t.br, p)
	switch {
	case err == io.EOF:
		return io.EOF
	case err == io.ErrUnexpectedEOF:
		return &ParseError{Format: t.format, Offset: t.off, Reason: fmt.Sprintf("the input ends %d bytes into a %d-byte record (truncated, or not a %s trace)", n, len(p), t.format)}
	case err != nil:
		return fmt.Errorf("reading byte %d: %w", t.off+int64(n), err)
	}
	t.off += int64(n)
	return nil
}

// A cache2k key is a Java int; its 32 bits are kept as an unsigned number,
// which names the same keys as the sign-extended long Caffeine uses.
func (t *Reader) nextCache2k() (uint64, error) {
	if err := t.readRecord(t.rec[:4]); err != nil {
		return 0, err
	}
	return uint64(binary.BigEndian.Uint32(t.rec[:4])), nil
}

const oracleRecord = 24

func (t *Reader) nextOracle() (uint64, error) {
	for {
		if err := t.readRecord(t.rec[:]); err != nil {
			return 0, err
		}
		if binary.LittleEndian.Uint32(t.rec[12:16]) != 0 {
			return binary.LittleEndian.Uint64(t.rec[4:12]), nil
		}
	}
}

// DetectHead is how much of the uncompressed start of a file Detect wants.
const DetectHead = 64 << 10

// Detect guesses the format of a trace from its file name and the start of
// its uncompressed content (up to DetectHead bytes), and says why, in words
// that finish the sentence "read as FORMAT: ...". The name decides where the
// publishers' naming is unambiguous (".lis" for ARC traces, "oracleGeneral"
// for libCacheSim's); otherwise the content does: text with two or more
// fields per line is ARC, text with "*" lines is LIRS, other text is keys;
// binary input whose first records hold plausible next-access times is
// oracleGeneral, and any other binary input is cache2k.
func Detect(name string, head []byte) (Format, string) {
	base := strings.ToLower(filepath.Base(name))
	for {
		trimmed := base
		for _, ext := range []string{".gz", ".gzip", ".xz", ".zst", ".zstd"} {
			trimmed = strings.TrimSuffix(trimmed, ext)
		}
		if trimmed == base {
			break
		}
		base = trimmed
	}
	switch {
	case strings.Contains(base, "oraclegeneral"):
		return FormatOracleGeneral, `the file name says "oracleGeneral"`
	case strings.HasSuffix(base, ".lis"):
		return FormatARC, "the file name ends in .lis, as the ARC traces' names do"
	case len(head) == 0:
		return FormatKeys, "the file is empty"
	}
	if isText(head) {
		lines := bytes.Split(head, []byte{'\n'})
		if len(head) == DetectHead && len(lines) > 1 {
			lines = lines[:len(lines)-1] // the last line may be cut short
		}
		for _, l := range lines {
			l = bytes.TrimSpace(l)
			if len(l) == 0 {
				continue
			}
			if _, rest, _ := field(l); len(bytes.TrimSpace(rest)) > 0 {
				return FormatARC, "the first line has several fields, as ARC traces' lines do"
			}
			break
		}
		for _, l := range lines {
			if string(bytes.TrimSpace(l)) == "*" {
				return FormatLIRS, `a line "*" is a LIRS breakpoint`
			}
		}
		return FormatKeys, "text with one field per line"
	}
	if looksOracle(head) {
		return FormatOracleGeneral, "binary, in 24-byte records whose next-access times are plausible"
	}
	return FormatCache2k, "binary and not oracleGeneral records, so cache2k's 4-byte integers"
}

// isText reports whether b holds only printable ASCII and line breaks;
// binary traces hold zero bytes wherever a key is below 2^24.
func isText(b []byte) bool {
	for _, c := range b {
		if (c < ' ' || c > '~') && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// looksOracle checks the records that head holds whole (at most 64): each
// next-access time must be -1 (no next access), INT64_MAX (libCacheSim's
// other spelling of it) or a count from 0 to 2^48, and some record must
// have a size (all-zero input is read as cache2k, whose reading keeps its
// requests). Read as oracle records, cache2k's integers put the low 16 bits
// of every sixth key into the top bytes of that field, which passes only
// when they are 0.
func looksOracle(head []byte) bool {
	n := min(len(head)/oracleRecord, 64)
	sized := false
	for i := range n {
		rec := head[i*oracleRecord:]
		v := int64(binary.LittleEndian.Uint64(rec[16:]))
		if v != -1 && v != math.MaxInt64 && (v < 0 || v > 1<<48) {
			return false
		}
		sized = sized || binary.LittleEndian.Uint32(rec[12:]) != 0
	}
	return sized
}
