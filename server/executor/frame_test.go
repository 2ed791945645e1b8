package executor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	valid := appendFrame(nil, frameResult, 7, []byte("result"))
	for _, tc := range []struct {
		name string
		in   []byte
		want frame
		err  error  // matched with errors.Is
		says string // in the error
	}{
		{name: "result", in: valid, want: frame{frameResult, 7, []byte("result")}},
		{name: "empty payload", in: appendFrame(nil, frameError, 1, nil), want: frame{frameError, 1, []byte{}}},
		{name: "hello", in: appendFrame(nil, frameHello, 0, helloPayload(4)), want: frame{frameHello, 0, helloPayload(4)}},
		{name: "exactly the limit", in: appendFrame(nil, frameResult, 1, make([]byte, 64)), want: frame{frameResult, 1, make([]byte, 64)}},
		{name: "nothing", in: nil, err: io.EOF},
		{name: "short header", in: valid[:5], err: io.ErrUnexpectedEOF},
		{name: "short payload", in: valid[:len(valid)-1], err: io.ErrUnexpectedEOF},
		{name: "header only", in: valid[:frameHeaderSize], err: io.ErrUnexpectedEOF},
		{name: "over the limit", in: appendFrame(nil, frameResult, 1, make([]byte, 65)), err: errFrameTooLarge, says: "65 bytes declared, the limit is 64"},
		{name: "type 0", in: appendFrame(nil, 0, 1, nil), err: errFrameType},
		{name: "type 6", in: appendFrame(nil, 6, 1, nil), err: errFrameType},
		{name: "text", in: []byte("Traceback (most recent call last):\n"), err: errFrameType, says: `"Traceback (mo"`},
		{name: "huge length", in: []byte{0xff, 0xff, 0xff, 0xff, frameResult, 0, 0, 0, 0, 0, 0, 0, 1}, err: errFrameTooLarge, says: "4294967295 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := readFrame(bytes.NewReader(tc.in), 64)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("error %v; want %v mentioning %q", err, tc.err, tc.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.typ != tc.want.typ || f.id != tc.want.id || !bytes.Equal(f.payload, tc.want.payload) {
				t.Errorf("got %+v; want %+v", f, tc.want)
			}
		})
	}
}

// A frame declaring 4 GiB must be refused before anything of that size is
// allocated, whatever the limit.
func TestReadFrameHugeLengthAllocatesNothing(t *testing.T) {
	hdr := []byte{0xff, 0xff, 0xff, 0xfe, frameResult, 0, 0, 0, 0, 0, 0, 0, 1}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := readFrame(bytes.NewReader(hdr), LimitFrameSize); !errors.Is(err, errFrameTooLarge) {
			t.Fatalf("error %v; want errFrameTooLarge", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("100 refused frames allocated %d bytes", d)
	}
}

func TestParseHello(t *testing.T) {
	v := func(version, conc uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, version), conc)
	}
	for _, tc := range []struct {
		name string
		f    frame
		conc int
		says string
	}{
		{"one", frame{frameHello, 0, v(1, 1)}, 1, ""},
		{"capped", frame{frameHello, 0, v(1, 1<<30)}, MaxWorkerConcurrency, ""},
		{"not hello", frame{frameResult, 0, v(1, 1)}, 0, "not hello"},
		{"nonzero id", frame{frameHello, 3, v(1, 1)}, 0, "request id 3"},
		{"short", frame{frameHello, 0, v(1, 1)[:7]}, 0, "7 bytes"},
		{"version 2", frame{frameHello, 0, v(2, 1)}, 0, "version 2"},
		{"zero at once", frame{frameHello, 0, v(1, 0)}, 0, "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseHello(tc.f)
			if tc.says != "" {
				if err == nil || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("error %v; want one mentioning %q", err, tc.says)
				}
				return
			}
			if err != nil || c != tc.conc {
				t.Fatalf("parseHello = %d, %v; want %d", c, err, tc.conc)
			}
		})
	}
}
