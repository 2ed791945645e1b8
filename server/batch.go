package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coalesce-go/coalesce"
)

// Batch framing. A batch request carries many inputs in one body, in one of
// two encodings chosen by Content-Type:
//
//   - application/vnd.coalesce.batch (binary): each input is a 4-byte
//     big-endian length followed by that many bytes, back to back until the
//     end of the body. The response, in the same type, is one record per
//     input in order: a 1-byte outcome (0 hit, 1 joined, 2 computed,
//     3 loaded, 255 error), a 4-byte big-endian length, and that many bytes: the
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
	outcomeLoaded   = 3
	outcomeError    = 255
)

// errBatch is wrapped by every batch decoding error; the message says what
// was wrong and what is allowed. errBatchTooLarge (too many inputs) and
// errBatchInputTooLarge (one input over the limit) wrap it too.
var (
	errBatch              = errors.New("bad batch")
	errBatchTooLarge      = fmt.Errorf("%w: too many inputs", errBatch)
	errBatchInputTooLarge = fmt.Errorf("%w: an input is too large", errBatch)
)

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
			return nil, fmt.Errorf("%w: input %d at byte %d declares %d bytes; the limit is %d per input", errBatchInputTooLarge, len(inputs), offset, size, lim.maxItemSize)
		}
		if len(inputs) == lim.maxItems {
			return nil, fmt.Errorf("%w: more than %d inputs; split the batch", errBatchTooLarge, lim.maxItems)
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
		return nil, fmt.Errorf("%w: %d inputs; the limit is %d, split the batch", errBatchTooLarge, len(b.Inputs), lim.maxItems)
	}
	for i, in := range b.Inputs {
		if len(in) > lim.maxItemSize {
			return nil, fmt.Errorf("%w: input %d is %d bytes; the limit is %d per input", errBatchInputTooLarge, i, len(in), lim.maxItemSize)
		}
	}
	return b.Inputs, nil
}

// maxBatchBody bounds a batch body whatever the limits multiply to.
const maxBatchBody = 1 << 30

// batch is POST /v1/compute/batch: every input is computed (or found) at
// once, the answer has one outcome per input, in order, in the request's
// encoding. A failed input does not fail the others; the status is 200
// once the batch itself was understood.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lim := batchLimits{maxItems: s.cfg.MaxBatchItems, maxItemSize: s.maxIn}
	mt := mediaType(r)
	if mt != batchBinaryType && mt != batchJSONType {
		s.fail(w, r, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedType,
			Message: fmt.Sprintf("Content-Type %q; send %s or %s", r.Header.Get("Content-Type"), batchBinaryType, batchJSONType)}, nil)
		return
	}
	ns, aerr := s.scope(r)
	if aerr != nil {
		s.fail(w, r, aerr, nil)
		return
	}
	limit := min(int64(lim.maxItems)*(int64(lim.maxItemSize)+4), maxBatchBody)
	if mt == batchJSONType {
		limit = min(limit*4/3+int64(lim.maxItems)*4+64, maxBatchBody) // base64 and punctuation
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var inputs [][]byte
	var err error
	if mt == batchBinaryType {
		inputs, err = decodeBinaryBatch(body, lim)
	} else {
		inputs, err = decodeJSONBatch(body, lim)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.fail(w, r, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeBatchTooLarge,
			Message: fmt.Sprintf("the body is over the limit of %d bytes (%d inputs of %d bytes); split the batch", limit, lim.maxItems, lim.maxItemSize)}, nil)
		return
	case err != nil:
		code, status := codeBadRequest, http.StatusBadRequest
		switch {
		case errors.Is(err, errBatchTooLarge):
			code, status = codeBatchTooLarge, http.StatusRequestEntityTooLarge
		case errors.Is(err, errBatchInputTooLarge):
			code, status = codeInputTooLarge, http.StatusRequestEntityTooLarge
		}
		s.fail(w, r, &apiError{Status: status, Code: code, Message: err.Error()}, nil)
		return
	}
	if aerr := s.enterWait(len(inputs)); aerr != nil {
		s.fail(w, r, aerr, nil)
		return
	}
	defer s.leaveWait(len(inputs))
	ctx, cancel, _ := s.waitContext(r.Context(), parsePrefer(r.Header))
	defer cancel()
	results, errs := ns.GetMany(ctx, inputs)
	if r.Context().Err() != nil {
		return // the client has gone
	}
	s.metrics.observeBatch(results, errs, time.Since(start))
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.cfg.Logger.Info("batch input failed", "index", i, "error", err.Error())
		}
	}
	if mt == batchBinaryType {
		writeBinaryBatch(w, results, errs)
	} else {
		writeJSONBatch(w, results, errs)
	}
}

func outcomeOf(src coalesce.Source) byte {
	switch src {
	case coalesce.Hit:
		return outcomeHit
	case coalesce.Joined:
		return outcomeJoined
	case coalesce.Loaded:
		return outcomeLoaded
	}
	return outcomeComputed
}

// batchError is an input's error in a batch answer; a deadline from
// Prefer: wait is reported as wait_exceeded.
func batchError(err error) *apiError {
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusGatewayTimeout, Code: codeWaitExceeded, Message: "no result within the request's wait; retry the input"}
	}
	return errorOf(err)
}

func writeBinaryBatch(w http.ResponseWriter, results []coalesce.Result, errs []error) {
	w.Header().Set("Content-Type", batchBinaryType)
	bw := bufio.NewWriter(w)
	var hdr [5]byte
	for i, r := range results {
		payload, outcome := r.Value, outcomeOf(r.Source)
		if errs[i] != nil {
			payload, _ = json.Marshal(batchError(errs[i]))
			outcome = outcomeError
		}
		hdr[0] = outcome
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
		bw.Write(hdr[:])
		bw.Write(payload)
	}
	bw.Flush()
}

type jsonValue struct {
	Value  []byte `json:"value"`
	Source string `json:"source"`
}

type jsonError struct {
	Error *apiError `json:"error"`
}

func writeJSONBatch(w http.ResponseWriter, results []coalesce.Result, errs []error) {
	w.Header().Set("Content-Type", batchJSONType)
	out := struct {
		Results []any `json:"results"`
	}{make([]any, len(results))}
	for i, r := range results {
		if errs[i] != nil {
			out.Results[i] = jsonError{batchError(errs[i])}
			continue
		}
		v := r.Value
		if v == nil {
			v = []byte{} // "" rather than null
		}
		out.Results[i] = jsonValue{Value: v, Source: r.Source.String()}
	}
	json.NewEncoder(w).Encode(out)
}
