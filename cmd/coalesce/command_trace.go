package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/coalesce-go/coalesce/cmd/coalesce/internal/replay"
)

func init() {
	register(command{
		name:    "trace",
		summary: "replay cache traces and print hit ratios: ours, LRU, otter, OPT",
		run:     runTrace,
	})
}

const traceUsage = `usage: coalesce trace [flags] WORKLOAD...

Replays each workload at each cache size and prints the hit ratio (percent)
of this project's store (ours), an exact LRU, otter v2 and Belady's optimal
(OPT, the upper bound), and ours−LRU. Sizes count entries.

--policies can add exact reference policies, which are not replayed by
default: arc (Megiddo and Modha's ARC), slru (segmented LRU, 10% protected)
and clock (CLOCK, one reference bit).

`

// traceFlags are the parsed arguments of the trace command.
type traceFlags struct {
	workloads []replay.Workload
	opts      replay.Options
	json      bool
	markdown  bool
	chartDir  string
	quiet     bool
}

func runTrace(args []string, stdout, stderr io.Writer) error {
	tf, err := parseTraceFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if !tf.quiet {
		tf.opts.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := replay.Run(ctx, tf.workloads, tf.opts)
	if err != nil {
		return err
	}
	if tf.chartDir != "" {
		files, err := replay.WriteCharts(tf.chartDir, results)
		if err != nil {
			return err
		}
		if !tf.quiet {
			fmt.Fprintf(stderr, "wrote %d charts to %s\n", len(files), tf.chartDir)
		}
	}
	if tf.json {
		return replay.WriteJSON(stdout, results)
	}
	if err := replay.WriteTable(stdout, results, tf.markdown); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return replay.WriteSummary(stdout, replay.Summarize(results), results, tf.markdown)
}

// parseTraceFlags accepts flags before, between and after the workloads, as
// in "coalesce trace a.gz b.gz --sizes 100,1000"; the flag package alone
// stops at the first workload.
func parseTraceFlags(args []string, stderr io.Writer) (traceFlags, error) {
	var tf traceFlags
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("sizes", "", "comma-separated cache sizes in entries, e.g. 1000,10000 (default: 1%, 2%, 5%, 10%, 25% and 50% of each workload's distinct keys)")
	policies := fs.String("policies", strings.Join(replay.Policies(), ","),
		"comma-separated policies to replay, in column order (also: "+strings.Join(replay.Extra, ", ")+")")
	seed := fs.Uint64("seed", 1, "seed of the synthetic workloads")
	fs.IntVar(&tf.opts.Parallel, "parallel", 0, "replays to run at once (default: GOMAXPROCS)")
	fs.BoolVar(&tf.json, "json", false, "print JSON (one object per workload, size and policy) instead of the table")
	fs.BoolVar(&tf.markdown, "markdown", false, "print the table in Markdown")
	fs.StringVar(&tf.chartDir, "chart", "", "write one PNG chart per workload (hit ratio against size) into `DIR`")
	fs.BoolVar(&tf.quiet, "quiet", false, "do not report progress on stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, traceUsage, replay.SyntaxHelp, "\n\nflags:\n")
		fs.PrintDefaults()
	}

	var args2 []string
	for rest := args; len(rest) > 0; {
		if err := fs.Parse(rest); err != nil {
			return tf, err
		}
		left := fs.Args()
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" {
			args2 = append(args2, left...)
			break
		}
		if len(left) > 0 {
			args2 = append(args2, left[0])
			left = left[1:]
		}
		rest = left
	}
	if len(args2) == 0 {
		fs.Usage()
		return tf, errors.New("no workload given: name trace files or synthetic workloads such as zipf:0.9")
	}
	if tf.opts.Parallel < 0 {
		return tf, fmt.Errorf("--parallel %d is not allowed: use 0 (all cores) or more", tf.opts.Parallel)
	}

	if *sizes != "" {
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimSpace(f), "_", ""), 10, 31)
			if err != nil || n == 0 {
				return tf, fmt.Errorf("--sizes: %q is not a cache size: sizes are whole numbers of entries from 1 to %d, separated by commas", f, 1<<31-1)
			}
			tf.opts.Sizes = append(tf.opts.Sizes, int(n))
		}
	}
	all := replay.AllPolicies()
	for _, p := range strings.Split(*policies, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		found := false
		for _, q := range all {
			found = found || p == q
		}
		if !found {
			return tf, fmt.Errorf("--policies: unknown policy %q: choose from %s", p, strings.Join(all, ","))
		}
		tf.opts.Policies = append(tf.opts.Policies, p)
	}

	seen := map[string]bool{}
	for _, a := range args2 {
		w, err := replay.ParseWorkload(a, *seed)
		if err != nil {
			return tf, err
		}
		if seen[w.Name] {
			return tf, fmt.Errorf("workload %s is given twice", w.Name)
		}
		seen[w.Name] = true
		tf.workloads = append(tf.workloads, w)
	}
	return tf, nil
}
