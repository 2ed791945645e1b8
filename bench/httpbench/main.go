// Command httpbench is the Go half of scripts/bench-http, which compares the
// daemon (coalesce serve) with nginx's proxy_cache over loopback HTTP. It
// holds the pieces the script cannot write in bash: the upstream both
// caches sit in front of, a bare net/http server answering from a map (the
// reference for what Go's HTTP stack costs alone), the 50-request stampede
// with its per-request timings, and the summary of all rounds.
//
// It measures and reports; it asserts nothing about time. Every server it
// starts listens on loopback only.
//
//	httpbench upstream  -addr 127.0.0.1:0 -ready-file F [-delay 20ms]
//	httpbench mapserver -addr 127.0.0.1:0 -ready-file F
//	httpbench freeport
//	httpbench prime     -url URL -body-file F
//	httpbench stampede  -url URL -upstream URL -label NAME -round N [-n 50]
//	httpbench calls     -upstream URL
//	httpbench summary   RESULTS.tsv
package main

import (
	"fmt"
	"io"
	"os"
)

// commands are the subcommands, by name.
var commands = map[string]func(args []string, stdout io.Writer) error{
	"upstream":  runUpstream,
	"mapserver": runMapServer,
	"freeport":  runFreePort,
	"prime":     runPrime,
	"stampede":  runStampede,
	"calls":     runCalls,
	"summary":   runSummary,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: httpbench upstream|mapserver|freeport|prime|stampede|calls|summary [flags] (see scripts/bench-http)")
		os.Exit(2)
	}
	if err := commands[os.Args[1]](os.Args[2:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "httpbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
