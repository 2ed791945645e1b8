package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/coalesce-go/coalesce"
)

// The binary batch framing (docs/SERVER.md): the request is each input as
// a 4-byte big-endian length and its bytes; the response is, per input in
// order, a 1-byte outcome, a 4-byte big-endian length and that many bytes:
// the result, or for an error its JSON {"code", "message"}.
const (
	batchType = "application/vnd.coalesce.batch"

	outcomeHit      = 0
	outcomeJoined   = 1
	outcomeComputed = 2
	outcomeLoaded   = 3
	outcomeError    = 255
)

// GetMany returns the results of inputs, in order, as Get would one by
// one, in one request per Options.BatchSize inputs. An input that fails
// does not fail the others: errs[i] is input i's error. A request that
// fails as a whole (a bad token, a batch over the daemon's limits, a bad
// namespace, ctx ending) sets the error of each of its inputs.
func (c *Client) GetMany(ctx context.Context, inputs [][]byte) ([]coalesce.Result, []error) {
	results := make([]coalesce.Result, len(inputs))
	errs := make([]error, len(inputs))
	for lo := 0; lo < len(inputs); lo += c.batch {
		hi := min(lo+c.batch, len(inputs))
		if err := c.getBatch(ctx, inputs[lo:hi], results[lo:hi], errs[lo:hi]); err != nil {
			for i := lo; i < hi; i++ {
				results[i], errs[i] = coalesce.Result{}, err
			}
		}
	}
	return results, errs
}

// getBatch sends one batch and fills results and errs, or fails as a
// whole.
func (c *Client) getBatch(ctx context.Context, inputs [][]byte, results []coalesce.Result, errs []error) error {
	body, err := encodeBatch(inputs)
	if err != nil {
		return err
	}
	req, err := c.request(ctx, http.MethodPost, "/v1/compute/batch", body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", batchType)
	c.scope(req)
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return unexpected(resp)
	}
	if err := decodeBatch(resp.Body, results, errs); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("client: POST /v1/compute/batch: %w", ctxErr)
		}
		return err
	}
	return nil
}

func encodeBatch(inputs [][]byte) ([]byte, error) {
	size := 0
	for i, in := range inputs {
		if uint64(len(in)) > math.MaxUint32 {
			return nil, fmt.Errorf("client: input %d is %d bytes, more than a batch can frame: %w", i, len(in), coalesce.ErrInputTooLarge)
		}
		size += 4 + len(in)
	}
	body := make([]byte, 0, size)
	for _, in := range inputs {
		body = binary.BigEndian.AppendUint32(body, uint32(len(in)))
		body = append(body, in...)
	}
	return body, nil
}

// errBatchResponse is wrapped by the errors of a malformed batch response.
var errBatchResponse = errors.New("client: malformed batch response")

// decodeBatch reads one record per element of results from r. A record's
// declared length is trusted only as far as its bytes arrive: the buffer
// grows with what is read, so a forged length costs nothing.
func decodeBatch(r io.Reader, results []coalesce.Result, errs []error) error {
	br := bufio.NewReader(r)
	var hdr [5]byte
	for i := range results {
		if n, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("%w: record %d of %d: the body ends inside its 5-byte header (%d bytes)", errBatchResponse, i, len(results), n)
		}
		size := int64(binary.BigEndian.Uint32(hdr[1:]))
		var payload bytes.Buffer
		if n, err := io.CopyN(&payload, br, size); err != nil {
			return fmt.Errorf("%w: record %d declares %d bytes but the body ends after %d", errBatchResponse, i, size, n)
		}
		switch hdr[0] {
		case outcomeHit, outcomeJoined, outcomeComputed, outcomeLoaded:
			results[i] = coalesce.Result{Value: payload.Bytes(), Source: [...]coalesce.Source{coalesce.Hit, coalesce.Joined, coalesce.Computed, coalesce.Loaded}[hdr[0]]}
			if results[i].Value == nil {
				results[i].Value = []byte{}
			}
		case outcomeError:
			var e struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(payload.Bytes(), &e); err != nil || e.Code == "" {
				return fmt.Errorf("%w: record %d is an error but not its JSON {\"code\", \"message\"}", errBatchResponse, i)
			}
			errs[i] = &Error{Status: statusOf(e.Code), Code: e.Code, Message: e.Message}
		default:
			return fmt.Errorf("%w: record %d has outcome %d; known are 0, 1, 2, 3 and 255", errBatchResponse, i, hdr[0])
		}
	}
	if n, _ := br.Read(hdr[:1]); n > 0 {
		return fmt.Errorf("%w: bytes after the %d records", errBatchResponse, len(results))
	}
	return nil
}
