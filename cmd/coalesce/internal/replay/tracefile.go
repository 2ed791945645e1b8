package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/coalesce-go/coalesce/internal/trace"
)

// The public traces come gzip-, xz- or zstd-compressed (Caffeine's
// simulator ships .gz and .xz, libCacheSim and the ARC traces' mirror .zst).
// The trace package reads gzip itself but must not depend on the other two
// decompressors, since the library module keeps its dependencies to what
// the cache needs; so the command undoes all three here and hands the
// reader plain bytes.
var magics = []struct {
	name  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{"bzip2", []byte("BZh")},
}

// maxZstdWindow bounds the memory a zstd stream may ask the decoder for.
// zstd's default levels use windows of 8 MiB or less and "--long" 128 MiB;
// a file that asks for more is refused with this number in the error
// rather than allowed to take gigabytes.
const maxZstdWindow = 1 << 30

// traceFile is an open trace with its compression undone.
type traceFile struct {
	r           *bufio.Reader // uncompressed content
	compression string        // "" when none
	close       []func() error
}

// openTrace opens the regular file at path and undoes the compression its
// first bytes announce. Errors are phrased to follow the argument's name.
func openTrace(path string) (*traceFile, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no such file (%v)", err)
	case err != nil:
		return nil, fmt.Errorf("cannot read it (%v)", err)
	case info.IsDir():
		return nil, errors.New("a directory, not a trace file")
	case !info.Mode().IsRegular():
		// A pipe or device could block the command before it starts, or
		// never end.
		kind := "not a regular file"
		switch t := info.Mode().Type(); {
		case t&fs.ModeNamedPipe != 0:
			kind = "a named pipe, not a regular file"
		case t&fs.ModeDevice != 0:
			kind = "a device, not a regular file"
		case t&fs.ModeSocket != 0:
			kind = "a socket, not a regular file"
		}
		return nil, fmt.Errorf("%s: write the trace to a file and name that", kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it (%v)", err)
	}
	tf := &traceFile{close: []func() error{f.Close}}
	raw := bufio.NewReaderSize(f, 64<<10)
	head, err := raw.Peek(8)
	if err != nil && err != io.EOF {
		tf.Close()
		return nil, fmt.Errorf("cannot read it (%v)", err)
	}
	var r io.Reader = raw
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			tf.compression = m.name
		}
	}
	switch tf.compression {
	case "gzip":
		gz, err := gzip.NewReader(raw)
		if err != nil {
			tf.Close()
			return nil, fmt.Errorf("gzip-compressed, but the gzip header is broken (%v)", err)
		}
		tf.close = append(tf.close, gz.Close)
		r = gz
	case "xz":
		xr, err := xz.NewReader(raw)
		if err != nil {
			tf.Close()
			return nil, fmt.Errorf("xz-compressed, but the xz header is broken (%v)", err)
		}
		r = xr
	case "zstd":
		// One decoder goroutine-free: concurrency 1 decodes inline, so
		// nothing outlives Close.
		zr, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			tf.Close()
			return nil, fmt.Errorf("zstd-compressed, but the decoder refused it (%v)", err)
		}
		tf.close = append(tf.close, func() error { zr.Close(); return nil })
		r = zr
	case "bzip2":
		tf.Close()
		return nil, errors.New("bzip2-compressed, which is not read: recompress it with gzip, xz or zstd, or decompress it")
	}
	tf.r = bufio.NewReaderSize(r, trace.DetectHead)
	return tf, nil
}

// Close closes the decompressor and the file.
func (tf *traceFile) Close() error {
	var errs []error
	for i := len(tf.close) - 1; i >= 0; i-- {
		errs = append(errs, tf.close[i]())
	}
	return errors.Join(errs...)
}

// detectFormat reads the start of the uncompressed content, without
// consuming it, and asks the trace package which format it is.
func (tf *traceFile) detectFormat(path string) (trace.Format, string, error) {
	head, err := tf.r.Peek(trace.DetectHead)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", "", tf.decodeError(err)
	}
	f, why := trace.Detect(path, head)
	return f, why, nil
}

// decodeError names the compression an error came out of; the
// decompressors' own messages do not say which file format they are about.
func (tf *traceFile) decodeError(err error) error {
	if tf.compression == "" {
		return err
	}
	return fmt.Errorf("%s-compressed, but decompressing it failed (%w)", tf.compression, err)
}

// readTrace returns the keys of the trace at path in format f.
func readTrace(path string, f trace.Format) ([]uint64, error) {
	tf, err := openTrace(path)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	defer tf.Close()
	r, err := trace.NewFormatReader(tf.r, f)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	defer r.Close()
	keys, err := r.ReadAll()
	if err != nil {
		if !errors.Is(err, trace.ErrSyntax) && !errors.Is(err, trace.ErrTooManyRequests) {
			err = tf.decodeError(err)
		}
		return nil, fmt.Errorf("trace %s (read as %s): %w", path, f, err)
	}
	return keys, nil
}

// traceName is a file's base name without the suffixes trace files carry.
func traceName(path string) string {
	name := filepath.Base(path)
	for {
		trimmed := name
		for _, suffix := range []string{".gz", ".xz", ".zst", ".zstd", ".trace", ".txt", ".lis", ".bin", ".oracleGeneral"} {
			trimmed = strings.TrimSuffix(trimmed, suffix)
		}
		if trimmed == name || trimmed == "" {
			return name
		}
		name = trimmed
	}
}
