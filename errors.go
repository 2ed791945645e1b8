package coalesce

import (
	"errors"
	"fmt"
)

var (
	// ErrOverloaded is returned when the queue of distinct inputs waiting
	// for a worker is full and Options.BlockWhenFull is false. Retry later,
	// raise Options.QueueSize, or set BlockWhenFull to wait in line instead.
	ErrOverloaded = errors.New("coalesce: overloaded: the queue of inputs waiting for a worker is full")

	// ErrClosed is returned for requests made after Close, and to the
	// waiters of computations that Close failed or cancelled.
	ErrClosed = errors.New("coalesce: group is closed")

	// ErrTimeout is returned to every waiter of a computation that ran
	// longer than Options.TaskTimeout.
	ErrTimeout = errors.New("coalesce: computation timed out")

	// ErrInputTooLarge is returned for an input longer than
	// Options.MaxInputSize.
	ErrInputTooLarge = errors.New("coalesce: input too large")

	// ErrGoexit is returned to every waiter of a computation whose Func
	// called runtime.Goexit (t.FailNow does). The Group replaces the worker
	// that ended.
	ErrGoexit = errors.New("coalesce: the computation called runtime.Goexit")

	// ErrNotInitialized is returned by a Group that was not made by New.
	ErrNotInitialized = errors.New("coalesce: the Group was not made by New; use coalesce.New")
)

// PanicError is the error delivered to every waiter of a computation that
// panicked. The worker that ran it recovers and lives on.
type PanicError struct {
	// Value is what the computation passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error says what the computation panicked with. It leaves the stack out,
// since errors travel to logs and remote clients; it is in Stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("coalesce: computation panicked: %v", e.Value)
}

// Unwrap returns the panic value if it is an error, so that errors.Is and
// errors.As see through the panic.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
