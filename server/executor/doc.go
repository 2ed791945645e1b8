// Package executor computes results for the coalesce daemon: each Executor
// turns an input into a result, and the daemon puts a coalesce.Group in front
// of it with coalesce.New(exec.Compute, ...), so an executor sees each
// distinct input once, not once per client.
//
// Three executors ship here:
//
//   - Process: a pool of long-lived worker processes in any language, which
//     pay their start-up once and speak a framed binary protocol on stdin and
//     stdout (docs/WORKER-PROTOCOL.md). A worker that crashes, hangs past its
//     task's deadline or writes garbage is killed and replaced.
//   - Upstream: forwards the input as the body of a POST to an HTTP service,
//     making the daemon a coalescing cache in front of it.
//   - Demo: a deterministic stand-in that answers after 15-30 ms, the
//     daemon's default.
//
// The one thing to know: every failure is an error, matched with errors.Is or
// errors.As against the values and types in errors.go, and every timeout also
// matches context.DeadlineExceeded. No input from a worker or an upstream can
// panic the daemon or make a call outlive its context.
package executor
