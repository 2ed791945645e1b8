package executor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The worker protocol's frames (docs/WORKER-PROTOCOL.md): a 13-byte header,
// then the payload.
//
//	offset 0  uint32 big-endian  payload length (not counting the header)
//	offset 4  uint8              frame type
//	offset 5  uint64 big-endian  request id (0 in the hello frame)
//	offset 13 payload
const frameHeaderSize = 13

// protocolVersion is the version this package speaks; a worker announces
// its own in its hello frame and must match.
const protocolVersion = 1

// Frame types. A worker sends hello once, first, then result, error or
// cancel frames; the pool sends request and cancel frames.
const (
	frameHello   byte = 1 // worker → pool: version uint32, max in flight uint32
	frameRequest byte = 2 // pool → worker: the input
	frameResult  byte = 3 // worker → pool: the result
	frameError   byte = 4 // worker → pool: a failure message for this input
	frameCancel  byte = 5 // pool → worker: drop this request; worker → pool: dropped
)

// helloSize is the length of a version 1 hello payload.
const helloSize = 8

// frame is one decoded frame. Payload is owned by the frame.
type frame struct {
	typ     byte
	id      uint64
	payload []byte
}

// errFrameTooLarge, errFrameType: a frame that no protocol version allows.
// Wrapped in ErrProtocol by the pool.
var (
	errFrameTooLarge = errors.New("frame too large")
	errFrameType     = errors.New("unknown frame type")
)

// readFrame reads one frame from r, whose payload may not exceed max bytes.
// It checks the declared length against max before allocating anything, so
// a hostile length costs nothing. At a clean end of stream (no byte of a new
// frame) it returns io.EOF; a frame cut short is io.ErrUnexpectedEOF.
func readFrame(r io.Reader, max int) (frame, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	f := frame{typ: hdr[4], id: binary.BigEndian.Uint64(hdr[5:13])}
	if f.typ < frameHello || f.typ > frameCancel {
		return frame{}, fmt.Errorf("%w 0x%02x (header %q: not a frame; a worker must write only frames to stdout, logs go to stderr)", errFrameType, f.typ, hdr[:])
	}
	if uint64(n) > uint64(max) {
		return frame{}, fmt.Errorf("%w: %d bytes declared, the limit is %d (header %q)", errFrameTooLarge, n, max, hdr[:])
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return f, nil
}

// appendFrame appends the encoding of one frame to dst.
func appendFrame(dst []byte, typ byte, id uint64, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, payload...)
}

// parseHello validates a hello frame and returns the number of requests the
// worker takes at once.
func parseHello(f frame) (int, error) {
	if f.typ != frameHello {
		return 0, fmt.Errorf("the first frame has type %d, not hello (%d)", f.typ, frameHello)
	}
	if f.id != 0 || len(f.payload) != helloSize {
		return 0, fmt.Errorf("malformed hello frame: request id %d (want 0), payload of %d bytes (want %d)", f.id, len(f.payload), helloSize)
	}
	v := binary.BigEndian.Uint32(f.payload[0:4])
	if v != protocolVersion {
		return 0, fmt.Errorf("the worker speaks protocol version %d; this daemon speaks %d", v, protocolVersion)
	}
	c := binary.BigEndian.Uint32(f.payload[4:8])
	if c == 0 {
		return 0, errors.New("the worker's hello announces 0 requests at once; it must take at least 1")
	}
	return int(min(c, MaxWorkerConcurrency)), nil
}

// helloPayload encodes a version 1 hello payload.
func helloPayload(concurrency uint32) []byte {
	p := binary.BigEndian.AppendUint32(nil, protocolVersion)
	return binary.BigEndian.AppendUint32(p, concurrency)
}
