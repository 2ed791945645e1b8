// Command coalesce runs the project's tools: the simulator that replays the
// user's workload against every design (sim) and the hit-ratio replay of
// cache traces (trace).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand: it parses its own flags from args and writes
// its output to stdout and diagnostics to stderr.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands []command

func register(c command) { commands = append(commands, c) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitInterrupted is the shell's status for a process ended by Ctrl-C
// (128 + SIGINT), so that a script can tell an interruption from a failure.
const exitInterrupted = 130

// run is main without the exit, so that tests can drive it.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			if err := c.run(args[1:], stdout, stderr); err != nil {
				// The one place a command's error is printed: a command
				// that also printed it would show it twice.
				fmt.Fprintf(stderr, "coalesce %s: %v\n", c.name, err)
				if errors.Is(err, context.Canceled) {
					return exitInterrupted
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "coalesce: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// givenFlags names the flags set on the command line, as opposed to those
// left at their defaults.
func givenFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: coalesce <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'coalesce <command> -h' for a command's flags.")
}
