// Package server puts a coalesce.Group behind HTTP, so that agents in other
// processes and languages share one cache and one set of computations: it
// is what `coalesce serve` runs, and an http.Handler a Go program can mount
// in its own process.
//
// The API (docs/SERVER.md): POST /v1/compute (the body is the input, the
// response the result, with Cache-Status per RFC 9211; Prefer: respond-async
// and wait per RFC 7240), GET /v1/results/KEY, POST /v1/compute/batch,
// GET /v1/stats and /v1/status, /metrics (Prometheus), the status page at
// /, /healthz, /readyz. Errors are JSON with a stable code. A client that
// disconnects frees its wait at once. The executors that compute behind it
// are in the subpackage executor.
package server
