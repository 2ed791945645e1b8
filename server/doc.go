// Package server puts a coalesce.Group behind HTTP, so that agents in other
// processes and languages share one cache and one set of computations: it
// is what `coalesce serve` runs, and an http.Handler a Go program can mount
// in its own process.
//
// This package is being built (issue #9): so far it has the request
// decoders (Prefer headers, batch framing); the handler follows.
package server
