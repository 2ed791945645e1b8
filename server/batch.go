package server

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Batch framing. A batch request carries many inputs in one body, in one of
// two encodings chosen by Content-Type:
//
//   - application/vnd.coalesce.batch (binary): each input is a 4-byte
//     big-endian length followed by that many bytes, back to back until the
//     end of the body. The response, in the same type, is one record per
//     input in order: a 1-byte outcome (0 hit, 1 joined, 2 computed,
//     255 error), a 4-byte big-endian length, and that many bytes: the
//     result, or for an error its JSON object {"code": ..., "message": ...}.
//   - application/json: {"inputs": ["<base64>", ...]}, answered with
//     {"results": [{"value": "<base64>", "source": "hit"} |
//     {"error": {"code": ..., "message": ...}}, ...]}.
const (
	batchBinaryType = "application/vnd.coalesce.batch"
	batchJSONType   = "application/json"

	outcomeHit      = 0
	outcomeJoined   = 1
	outcomeComputed = 2
	outcomeError    = 255
)

// errBatch is wrapped by every batch decoding error; the message says what
// was wrong and what is allowed.
var errBatch = errors.New("bad batch")

// batchLimits bound what a batch decoder accepts before it allocates.
type batchLimits struct {
	maxItems    int // inputs per batch
	maxItemSize int // bytes per input
}

// decodeBinaryBatch reads the binary framing. It checks each declared
// length against the limits before reading the input, so a forged length
// costs nothing; the body's total size is bounded by the caller's reader.
func decodeBinaryBatch(r io.Reader, lim batchLimits) ([][]byte, error) {
	br := bufio.NewReader(r)
	var inputs [][]byte
	var hdr [4]byte
	for offset := int64(0); ; {
		n, err := io.ReadFull(br, hdr[:])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: input %d at byte %d: the body ends inside its 4-byte length (%d of 4 bytes)", errBatch, len(inputs), offset, n)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if int64(size) > int64(lim.maxItemSize) {
			return nil, fmt.Errorf("%w: input %d at byte %d declares %d bytes; the limit is %d per input", errBatch, len(inputs), offset, size, lim.maxItemSize)
		}
		if len(inputs) == lim.maxItems {
			return nil, fmt.Errorf("%w: more than %d inputs; split the batch", errBatch, lim.maxItems)
		}
		in := make([]byte, size)
		if got, err := io.ReadFull(br, in); err != nil {
			return nil, fmt.Errorf("%w: input %d at byte %d declares %d bytes but the body ends after %d", errBatch, len(inputs), offset, size, got)
		}
		inputs = append(inputs, in)
		offset += 4 + int64(size)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%w: no inputs; each is a 4-byte big-endian length and its bytes", errBatch)
	}
	return inputs, nil
}

// jsonBatch is the JSON form of a batch request.
type jsonBatch struct {
	Inputs [][]byte `json:"inputs"` // base64, as encoding/json writes []byte
}

// decodeJSONBatch reads the JSON framing. The body's size is bounded by
// the caller's reader, which bounds the work here too.
func decodeJSONBatch(r io.Reader, lim batchLimits) ([][]byte, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var b jsonBatch
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf(`%w: %v; the body must be {"inputs": ["<base64>", ...]}`, errBatch, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", errBatch)
	}
	switch {
	case len(b.Inputs) == 0:
		return nil, fmt.Errorf(`%w: no inputs; the body must be {"inputs": ["<base64>", ...]}`, errBatch)
	case len(b.Inputs) > lim.maxItems:
		return nil, fmt.Errorf("%w: %d inputs; the limit is %d, split the batch", errBatch, len(b.Inputs), lim.maxItems)
	}
	for i, in := range b.Inputs {
		if len(in) > lim.maxItemSize {
			return nil, fmt.Errorf("%w: input %d is %d bytes; the limit is %d per input", errBatch, i, len(in), lim.maxItemSize)
		}
	}
	return b.Inputs, nil
}
