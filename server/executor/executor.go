package executor

import "context"

// Executor computes the result of one input. Compute has the shape of
// coalesce.Func, so a daemon hands exec.Compute to coalesce.New.
//
// Implementations are safe for concurrent use. Compute returns when ctx ends,
// with an error that wraps ctx.Err() (or, for a deadline that a worker or an
// upstream overran, one that also matches context.DeadlineExceeded). Close
// ends the calls in flight with ErrClosed, releases everything the executor
// holds (processes, connections, goroutines) and waits for it; later calls to
// Compute fail with ErrClosed. Close may be called more than once.
type Executor interface {
	Compute(ctx context.Context, input []byte) ([]byte, error)
	Close() error
}

var (
	_ Executor = (*Process)(nil)
	_ Executor = (*Upstream)(nil)
	_ Executor = (*Demo)(nil)
)
