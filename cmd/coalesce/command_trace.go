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
	"github.com/coalesce-go/coalesce/internal/trace"
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

Trace files may be plain, gzip, xz or zstd (told by their content). --format
says how to read them; auto, the default, decides from each file's name and
content and says on stderr what it chose:

  keys           this project's format: one unsigned decimal key per line
  lirs           the LIRS traces: one block number per line; "*" lines (the
                 LIRS simulator's breakpoints) and blank lines are skipped
  arc            the ARC traces (*.lis): lines "START COUNT x x", each read as
                 COUNT requests for blocks START, START+1, ...
  cache2k        the cache2k traces: 4-byte big-endian integers
  oraclegeneral  libCacheSim's binary format: 24-byte little-endian records
                 (time, object id, size, next access); the key is the object
                 id, and records of size 0 are skipped, as libCacheSim does

Where to download the traces (docs/HITRATIO.md measures these):

  LIRS (cs, gli, loop, multi1, ps, ...) and cache2k (orm-busy, web07, ...):
    Caffeine's simulator resources, lirs/*.trace.gz and cache2k/*.trace.xz in
    https://github.com/ben-manes/caffeine/tree/master/simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser
    (cache2k's own copies: https://github.com/cache2k/cache2k-benchmark);
    cloud_physics/w106.trace.xz there is in the cache2k format too
  ARC (OLTP, P1-P14, S1-S3, DS1, ...), zstd-compressed *.lis.zst:
    https://github.com/moka-rs/cache-trace/tree/main/arc (cite the ARC paper,
    Megiddo and Modha, FAST 2003, as the traces' release asks)
  libCacheSim's datasets in oracleGeneral (CloudPhysics, MSR, Twitter,
  Meta, Wikimedia, Tencent, Alibaba, ...), zstd-compressed:
    https://github.com/cacheMon/cache_dataset lists them; the files are at
    https://ftp.pdl.cmu.edu/pub/datasets/twemcacheWorkload/cacheDatasets/ and
    https://huggingface.co/datasets/1a1a11a/cache_dataset_oracleGeneral

`

// maxCacheSize bounds --sizes: no trace is longer than trace.MaxRequests,
// so a larger cache never evicts, while the store replayed as ours sizes
// its tables from the number (2^31 entries took 4 s and 500 MB before the
// first request).
const maxCacheSize = trace.MaxRequests

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
		for _, w := range tf.workloads {
			if w.Detected != "" {
				fmt.Fprintf(stderr, "%s: read as %s (--format auto: %s)\n", w.Name, w.Format, w.Detected)
			}
		}
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
	format := fs.String("format", "auto", "how to read trace files: auto, "+strings.Join(formatNames(), ", ")+" (see above)")
	// The flag package prints a bad flag's error and then the whole usage;
	// the error alone, printed once by main, is clearer, and -h still
	// prints the usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	printUsage := func() {
		fs.SetOutput(stderr)
		fmt.Fprint(stderr, traceUsage, replay.SyntaxHelp, "\n\nflags:\n")
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}

	var args2 []string
	for rest := args; len(rest) > 0; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage()
				return tf, err
			}
			return tf, fmt.Errorf("%v (see coalesce trace -h)", err)
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
		return tf, errors.New("no workload given: name trace files or synthetic workloads such as zipf:0.9 (see coalesce trace -h)")
	}
	if tf.opts.Parallel < 0 {
		return tf, fmt.Errorf("--parallel %d is not allowed: use 0 (all cores) or more", tf.opts.Parallel)
	}

	if *sizes != "" {
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimSpace(f), "_", ""), 10, 64)
			switch {
			case err == nil && n > maxCacheSize, errors.Is(err, strconv.ErrRange):
				return tf, fmt.Errorf("--sizes: %q is above the largest cache size, %d entries (trace.MaxRequests: no trace is longer, so a larger cache never evicts)", f, maxCacheSize)
			case err != nil || n == 0:
				return tf, fmt.Errorf("--sizes: %q is not a cache size: sizes are whole numbers of entries from 1 to %d, separated by commas", f, maxCacheSize)
			}
			tf.opts.Sizes = append(tf.opts.Sizes, int(n))
		}
	}
	var traceFormat trace.Format // "" detects each file's format
	if !strings.EqualFold(strings.TrimSpace(*format), "auto") {
		f, err := trace.ParseFormat(*format)
		if err != nil {
			return tf, fmt.Errorf("--format: unknown format %q: choose from auto, %s", *format, strings.Join(formatNames(), ", "))
		}
		traceFormat = f
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
		w, err := replay.ParseWorkloadFormat(a, *seed, traceFormat)
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

func formatNames() []string {
	var names []string
	for _, f := range trace.Formats() {
		names = append(names, string(f))
	}
	return names
}
