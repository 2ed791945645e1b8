package executor

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary worker output to the frame reader: it must
// never panic, never return a payload over the limit, allocate nothing
// beyond the limit, and every frame it accepts must re-encode to the bytes
// it consumed.
func FuzzReadFrame(f *testing.F) {
	for _, seed := range [][]byte{
		appendFrame(nil, frameHello, 0, helloPayload(1)),
		appendFrame(appendFrame(nil, frameResult, 1, []byte("ok")), frameError, 2, []byte("bad input")),
		appendFrame(nil, frameCancel, 9, nil),
		[]byte("Traceback (most recent call last):\n"),
		{0xff, 0xff, 0xff, 0xff, frameResult, 0, 0, 0, 0, 0, 0, 0, 1},
		appendFrame(nil, frameResult, 1, []byte("cut short"))[:15],
	} {
		f.Add(seed)
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		consumed := 0
		for {
			fr, err := readFrame(r, limit)
			if err != nil {
				if err == io.EOF && consumed != len(data) {
					t.Fatalf("io.EOF with %d of %d bytes read", consumed, len(data))
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, errFrameTooLarge) && !errors.Is(err, errFrameType) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(fr.payload) > limit {
				t.Fatalf("payload of %d bytes accepted; the limit is %d", len(fr.payload), limit)
			}
			if cap(fr.payload) > limit {
				t.Fatalf("allocated %d bytes for a payload; the limit is %d", cap(fr.payload), limit)
			}
			enc := appendFrame(nil, fr.typ, fr.id, fr.payload)
			if !bytes.Equal(enc, data[consumed:consumed+len(enc)]) {
				t.Fatalf("frame %+v re-encodes to % x; it was read from % x", fr, enc, data[consumed:consumed+len(enc)])
			}
			consumed += len(enc)
			if fr.typ == frameHello {
				_, _ = parseHello(fr) // must not panic either
			}
		}
	})
}
