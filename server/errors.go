package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/coalesce-go/coalesce"
)

// apiError is an error as the API reports it: a stable code a client can
// switch on, a message that says what to do, and the HTTP status. The body
// is {"error": {"code": ..., "message": ...}}.
type apiError struct {
	Status     int    `json:"-"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter int    `json:"-"` // seconds, for 429 and 503
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// The stable codes. docs/SERVER.md lists them with their statuses.
const (
	codeBadRequest       = "bad_request"
	codeInputTooLarge    = "input_too_large"
	codeBatchTooLarge    = "batch_too_large"
	codeUnsupportedType  = "unsupported_media_type"
	codeMethod           = "method_not_allowed"
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeOverloaded       = "overloaded"
	codeTooManyWaiters   = "too_many_waiters"
	codeTimeout          = "timeout"
	codeWaitExceeded     = "wait_exceeded"
	codeExecutorFailed   = "executor_failed"
	codeShuttingDown     = "shutting_down"
	codeClientCancelled  = "cancelled"
	codeBadNamespace     = "bad_namespace"
	codeTierFailed       = "tier_failed"
	retryAfterOverloaded = 1
)

// errorOf maps an error from the Group (or the executor under it) to what
// the API says. Nothing of a panic's value or stack reaches the client: the
// handler logs them.
func errorOf(err error) *apiError {
	var ae *apiError
	var pe *coalesce.PanicError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, coalesce.ErrBadNamespace):
		return &apiError{Status: http.StatusBadRequest, Code: codeBadNamespace, Message: strings.TrimPrefix(err.Error(), "coalesce: ")}
	case errors.Is(err, coalesce.ErrInputTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeInputTooLarge, Message: err.Error() + "; send a smaller input"}
	case errors.Is(err, coalesce.ErrOverloaded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeOverloaded, Message: "the queue of inputs waiting for a worker is full; retry after the Retry-After delay", RetryAfter: retryAfterOverloaded}
	case errors.Is(err, coalesce.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeShuttingDown, Message: "the server is shutting down; retry on another instance or after it restarts", RetryAfter: retryAfterOverloaded}
	case errors.Is(err, coalesce.ErrTimeout):
		return &apiError{Status: http.StatusGatewayTimeout, Code: codeTimeout, Message: err.Error() + "; the computation took longer than the server's task timeout"}
	case errors.As(err, &pe):
		return &apiError{Status: http.StatusBadGateway, Code: codeExecutorFailed, Message: "the computation panicked; the server's log has the details"}
	case errors.Is(err, coalesce.ErrGoexit):
		return &apiError{Status: http.StatusBadGateway, Code: codeExecutorFailed, Message: "the computation exited its goroutine; the server's log has the details"}
	case errors.Is(err, context.DeadlineExceeded):
		// The executor's own bound (an upstream's timeout, a worker's
		// deadline): the computation did not finish in time.
		return &apiError{Status: http.StatusGatewayTimeout, Code: codeTimeout, Message: "the computation did not finish in time: " + err.Error()}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 499, Code: codeClientCancelled, Message: "the request was cancelled"}
	}
	return &apiError{Status: http.StatusBadGateway, Code: codeExecutorFailed, Message: "the computation failed: " + err.Error()}
}

// writeError writes e as the response.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="coalesce"`)
	}
	status := e.Status
	if status == 499 {
		// Not a standard status: the client has gone, and nothing it could
		// read is lost; a proxy in between gets a 503 instead.
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error *apiError `json:"error"`
	}{e})
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeBadRequest, Message: fmt.Sprintf(format, args...)}
}
