package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coalesce-go/coalesce"
)

var (
	// ErrUnauthorized is wrapped by the *Error of a 401: the daemon wants a
	// bearer token (Options.Token) and got none, or a wrong one.
	ErrUnauthorized = errors.New("client: unauthorized: missing or wrong bearer token; set Options.Token")

	// ErrNotFound is wrapped by the *Error of a 404 from Poll: no result
	// for the key is cached or being computed (it was never started,
	// evicted, or started by a daemon since restarted). Send the input
	// again.
	ErrNotFound = errors.New("client: no result for this key is cached or being computed")
)

// Error is an error answered by the daemon: its HTTP status, its stable
// code (docs/SERVER.md lists them) and its message, which says what to do.
// It wraps the library's error of the same meaning, so that
// errors.Is(err, coalesce.ErrOverloaded) and the like work as they do
// in-process:
//
//	overloaded, too_many_waiters  coalesce.ErrOverloaded
//	timeout, wait_exceeded        coalesce.ErrTimeout
//	input_too_large               coalesce.ErrInputTooLarge
//	shutting_down                 coalesce.ErrClosed
//	bad_namespace                 coalesce.ErrBadNamespace
//	unauthorized                  ErrUnauthorized
//	not_found                     ErrNotFound
type Error struct {
	Status  int    // HTTP status; for an item of a batch, the status its code goes with
	Code    string // stable code, such as "overloaded"; "" if the body was not the daemon's JSON
	Message string
	// RetryAfter is the response's Retry-After delay (overloaded,
	// too_many_waiters, shutting_down), or zero.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("client: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("client: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Unwrap returns the library's error for e's code, or nil.
func (e *Error) Unwrap() error {
	switch e.Code {
	case "overloaded", "too_many_waiters":
		return coalesce.ErrOverloaded
	case "timeout", "wait_exceeded":
		return coalesce.ErrTimeout
	case "input_too_large":
		return coalesce.ErrInputTooLarge
	case "shutting_down":
		return coalesce.ErrClosed
	case "bad_namespace":
		return coalesce.ErrBadNamespace
	case "unauthorized":
		return ErrUnauthorized
	case "not_found":
		return ErrNotFound
	case "":
		// Not the daemon's JSON (a proxy in between, say): go by status.
		switch e.Status {
		case http.StatusUnauthorized:
			return ErrUnauthorized
		case http.StatusRequestEntityTooLarge:
			return coalesce.ErrInputTooLarge
		}
	}
	return nil
}

// statusOf is the status a code is answered with, for the items of a
// batch, whose errors carry a code but no status of their own.
func statusOf(code string) int {
	switch code {
	case "bad_request", "bad_namespace":
		return http.StatusBadRequest
	case "unauthorized":
		return http.StatusUnauthorized
	case "not_found":
		return http.StatusNotFound
	case "input_too_large", "batch_too_large":
		return http.StatusRequestEntityTooLarge
	case "timeout", "wait_exceeded":
		return http.StatusGatewayTimeout
	case "overloaded", "too_many_waiters", "shutting_down", "cancelled":
		return http.StatusServiceUnavailable
	case "tier_failed":
		return http.StatusInternalServerError
	}
	return http.StatusBadGateway // executor_failed, and codes added later
}

// errorBody is the daemon's JSON error, {"error": {"code", "message"}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// maxErrorBody bounds what is read of an error response.
const maxErrorBody = 64 << 10

// responseError reads an error response into an *Error.
func responseError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
		return e
	}
	e.Message = strings.TrimSpace(string(body))
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// maxRetryAfter bounds a Retry-After a client honours, whatever it says.
const maxRetryAfter = time.Minute

// retryAfter parses Retry-After: delta-seconds or an HTTP date (RFC 9110
// section 10.2.3); zero if absent or malformed.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), maxRetryAfter)
}
