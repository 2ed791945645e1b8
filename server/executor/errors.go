package executor

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by Compute after Close, and to the calls that
	// Close ended.
	ErrClosed = errors.New("executor: closed")

	// ErrInputTooLarge is returned for an input the executor cannot send:
	// longer than ProcessOptions.MaxFrameSize.
	ErrInputTooLarge = errors.New("executor: input too large")

	// ErrWorkerStart is returned while no worker process is running because
	// the last one to start failed: the command could not be run, exited or
	// wrote garbage before its hello frame, or sent none within
	// ProcessOptions.StartTimeout. The message carries the worker's last line
	// on stderr. The pool retries with a growing delay; fix the command.
	ErrWorkerStart = errors.New("executor: worker failed to start")

	// ErrWorkerCrashed is returned for a call whose worker process died
	// before answering it: the process exited, or the pool killed it because
	// another call on it overran its deadline. The message carries the exit
	// status and the worker's last line on stderr. A replacement is started;
	// with ProcessOptions.RetryOnCrash the call was already retried once.
	ErrWorkerCrashed = errors.New("executor: worker crashed")

	// ErrWorkerTimeout is returned for a call whose context deadline passed
	// while its worker was computing it. The pool killed that worker (its
	// other calls fail with ErrWorkerCrashed) and starts a replacement. It
	// also matches context.DeadlineExceeded.
	ErrWorkerTimeout = errors.New("executor: worker timed out")

	// ErrProtocol is returned for a call whose worker wrote something the
	// protocol does not allow (a malformed or oversized frame, an answer to
	// an unknown request id, bytes that are not frames at all: often a stray
	// print to stdout). The worker was killed and is replaced. Workers must
	// write logs to stderr, never stdout.
	ErrProtocol = errors.New("executor: worker protocol error")

	// ErrUpstream matches every failure of an Upstream: a transport error
	// (refused, reset, timed out) or a non-2xx status (then the error is an
	// *UpstreamError too).
	ErrUpstream = errors.New("executor: upstream failed")

	// ErrResultTooLarge is returned for a result longer than
	// UpstreamOptions.MaxResponseSize. It matches ErrUpstream too.
	ErrResultTooLarge = errors.New("executor: result too large")
)

// WorkerError is the failure a worker process reported for one input (an
// error frame). The worker is healthy and keeps serving; the failure is the
// function's answer for this input.
type WorkerError struct {
	// Message is the worker's text, as sent (valid UTF-8 only: invalid
	// bytes are replaced).
	Message string
}

// Error returns the worker's message.
func (e *WorkerError) Error() string {
	return "executor: the worker failed on this input: " + e.Message
}

// UpstreamError is a non-2xx response from an Upstream. It matches
// ErrUpstream.
type UpstreamError struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body (at most 512 bytes, valid
	// UTF-8), to show what the upstream said.
	Body string
}

// Error says which status the upstream answered with and how its body began.
func (e *UpstreamError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("executor: upstream answered status %d", e.Status)
	}
	return fmt.Sprintf("executor: upstream answered status %d: %q", e.Status, e.Body)
}

// Is reports that an UpstreamError is an ErrUpstream.
func (e *UpstreamError) Is(target error) bool { return target == ErrUpstream }
