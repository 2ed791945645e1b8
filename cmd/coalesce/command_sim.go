package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/coalesce-go/coalesce/cmd/coalesce/internal/sim"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

func init() {
	register(command{
		name:    "sim",
		summary: "replay the user's workload against every design and compare them",
		run:     runSim,
	})
}

const simUsage = `usage: coalesce sim [flags]

Replays one generated request stream against each design, one after the
other, and prints what each did. Every flag must be in its range: a value
outside it is an error, never silently replaced. Zero means a default only
where the flag says so (--workers, --rate).

`

func runSim(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("coalesce sim", flag.ContinueOnError)
	var (
		cfg        sim.Config
		quick      = fs.Bool("quick", false, "a run of a few seconds: 2s per design over 150 keys (unless --duration or --keys is set)")
		task       = fs.String("task", "sleep", "how a task spends its time: sleep, or cpu to burn a core")
		designs    = fs.String("designs", strings.Join(sim.DefaultDesigns(false), ","), "comma-separated designs to run, in order, each at most once (of "+strings.Join(sim.DesignNames(), ",")+"); by default cluster too when --redis is given")
		tracePath  = fs.String("trace", "", "take the key stream from this trace (gzip, one decimal key per line) instead of the Zipf draw")
		jsonOut    = fs.Bool("json", false, "print the results as JSON instead of tables (and no progress bar)")
		reportPath = fs.String("report", "coalesce-sim.html", "write an HTML report with charts to this file (checked before the run); empty for none")
		noProgress = fs.Bool("no-progress", false, "no progress bar even on a terminal")
		cacheMiB   = fs.Int64("cache-mib", 1024, fmt.Sprintf("result cache budget in MiB of the designs that cache, 1 to %d", sim.MaxCacheBytes>>20))
		seed       = fs.Uint64("seed", 1, "seed of the request stream, not 0")
	)
	fs.StringVar(&cfg.Redis, "redis", "", "the Redis server of the cluster design, host:port or a redis:// URL (scripts/redis starts a throwaway one); each run writes under a fresh key prefix and deletes it")
	fs.IntVar(&cfg.Nodes, "nodes", 3, fmt.Sprintf("nodes of the cluster design, each a Group with --workers of its own and its own Redis connection, 1 to %d", sim.MaxNodes))
	fs.IntVar(&cfg.Agents, "agents", 20, fmt.Sprintf("agents sending requests, 1 to %d and at most --in-flight", sim.MaxAgents))
	fs.IntVar(&cfg.InFlight, "in-flight", 50, fmt.Sprintf("requests the agents may have outstanding in total, --agents to %d", sim.MaxInFlight))
	fs.Float64Var(&cfg.Rate, "rate", 0, "arrivals per second; 0 derives it by Little's law: in-flight / mean task duration")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, fmt.Sprintf("how long each design runs, above 0 and at most %v", sim.MaxDuration))
	fs.IntVar(&cfg.Workers, "workers", 0, fmt.Sprintf("computations at once in every design, 1 to %d; 0 = GOMAXPROCS", sim.MaxWorkers))
	fs.IntVar(&cfg.Keys, "keys", 1000, fmt.Sprintf("size of the Zipf key space, 1 to %d", sim.MaxKeys))
	fs.Float64Var(&cfg.ZipfS, "zipf", 1.1, fmt.Sprintf("Zipf exponent, above 1 and at most %d; larger concentrates requests on fewer keys", sim.MaxZipf))
	fs.StringVar(&cfg.TaskDist, "task-dist", "uniform", "task duration distribution: uniform, fixed, normal or exp")
	fs.DurationVar(&cfg.TaskMin, "task-min", 15*time.Millisecond, "shortest task, 0 or more")
	fs.DurationVar(&cfg.TaskMax, "task-max", 30*time.Millisecond, fmt.Sprintf("longest task, above 0, at least --task-min and at most %v", sim.MaxTask))
	fs.IntVar(&cfg.InputMin, "input-min", 256, "smallest input in bytes, at least 16 (the simulator's header)")
	fs.IntVar(&cfg.InputMax, "input-max", 1024, fmt.Sprintf("largest input in bytes, --input-min to %d", sim.MaxInputSize))
	fs.IntVar(&cfg.OutputSize, "output", 128, fmt.Sprintf("result size in bytes, 1 to %d; every key's input and result must fit in %s", sim.MaxOutputSize, sim.MaxMemoryString))

	// The flag package prints a parse error and the whole usage; the error
	// alone, printed once by main, says more.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprint(stderr, simUsage)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%v (see coalesce sim -h)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; sim takes only flags", fs.Arg(0))
	}
	set := givenFlags(fs)
	if *quick {
		if !set["duration"] {
			cfg.Duration = 2 * time.Second
		}
		if !set["keys"] {
			cfg.Keys = 150
		}
	}
	cfg.Task = sim.TaskKind(*task)
	if err := sim.CheckCacheMiB(*cacheMiB); err != nil {
		return err
	}
	cfg.CacheBytes = *cacheMiB << 20
	if *seed == 0 {
		return errors.New("--seed 0: use any other value (0 is reserved for the default)")
	}
	cfg.Seed = *seed
	for _, d := range strings.Split(*designs, ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Designs = append(cfg.Designs, d)
		}
	}
	if !set["designs"] && cfg.Redis != "" {
		cfg.Designs = sim.DefaultDesigns(true)
	}
	if len(cfg.Designs) == 0 {
		return fmt.Errorf("--designs %q: no designs given; choose among %s", *designs, strings.Join(sim.DesignNames(), ","))
	}
	// Config takes the zero of every field for its default, but on the
	// command line only --workers and --rate say so: validating before
	// Defaults makes any other zero an error.
	if cfg.Workers == 0 || cfg.Rate == 0 {
		d := cfg.Defaults()
		cfg.Workers, cfg.Rate = d.Workers, d.Rate
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	report, err := newReportFile(*reportPath)
	if err != nil {
		return err
	}
	defer report.discard()
	if *tracePath != "" {
		// The stream needs at most rate×duration keys; reading more of a
		// multi-million-line trace would only cost time.
		keys, err := sim.ReadTraceKeys(*tracePath, int(cfg.Rate*cfg.Duration.Seconds())+1)
		if err != nil {
			return fmt.Errorf("--trace: %w", err)
		}
		cfg.TraceKeys = keys
		if err := cfg.Validate(); err != nil {
			return err
		}
	}

	var bars *mpb.Progress
	if !*jsonOut && !*noProgress && isTerminal(stderr) {
		bars = mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(40))
		cfg.Progress = &progressBars{p: bars}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if simTestHook != nil {
		simTestHook(ctx, &cfg)
	}
	rep, err := sim.Run(ctx, cfg)
	if bars != nil {
		bars.Wait()
	}
	if rep == nil || len(rep.Results) == 0 {
		return err
	}
	if *jsonOut {
		if werr := rep.WriteJSON(stdout); werr != nil {
			return werr
		}
	} else if werr := rep.WriteTable(stdout); werr != nil {
		return werr
	}
	if report != nil {
		command := strings.TrimSpace("coalesce sim " + strings.Join(args, " "))
		if werr := report.write(rep, command); werr != nil {
			return werr
		}
		if !*jsonOut {
			fmt.Fprintf(stdout, "report: %s\n", *reportPath)
		}
	}
	if ie := (*sim.InterruptedError)(nil); errors.As(err, &ie) {
		return partialRun{ie}
	}
	return err
}

// partialRun is an interruption after some designs finished: main prints
// it after their results, so it points at them.
type partialRun struct{ *sim.InterruptedError }

func (e partialRun) Error() string {
	finished := fmt.Sprintf("the %d designs", e.Finished)
	if e.Finished == 1 {
		finished = "the one design"
	}
	return fmt.Sprintf("interrupted during design %s; the results above are of %s that finished before it", e.Design, finished)
}

func (e partialRun) Unwrap() error { return e.InterruptedError }

// simTestHook, when set, is called just before the run with its context
// and configuration, so that a test can interrupt a run at a known point.
var simTestHook func(ctx context.Context, cfg *sim.Config)

// reportFile is the HTML report, written to a temporary file beside its
// path and renamed over it: creating the temporary file before the run
// checks the path is writable, and a run that fails leaves an older report
// in place.
type reportFile struct {
	path string
	tmp  *os.File
}

func newReportFile(path string) (*reportFile, error) {
	if path == "" {
		return nil, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("--report %s: is a directory; give a file name, or \"\" for no report", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--report %s: cannot write in %s (%v); give a writable path, or \"\" for no report", path, dir, err)
	}
	return &reportFile{path: path, tmp: tmp}, nil
}

func (r *reportFile) write(rep *sim.Report, command string) error {
	f := r.tmp
	r.tmp = nil
	err := rep.WriteHTML(f, command)
	if err == nil {
		// CreateTemp's 0600 would hide the report from other users,
		// unlike any other file the command writes.
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), r.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing the report %s: %w", r.path, err)
	}
	return nil
}

// discard removes the temporary file of a report that was not written.
func (r *reportFile) discard() {
	if r == nil || r.tmp == nil {
		return
	}
	r.tmp.Close()
	os.Remove(r.tmp.Name())
}

// isTerminal reports whether w is a character device, where a progress
// bar can redraw itself; anything else (a file, a pipe) gets none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBars shows one bar per design, filled by requests answered.
type progressBars struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func (b *progressBars) Start(design string, total int) {
	b.bar = b.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(design, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 14})),
		mpb.AppendDecorators(decor.CountersNoUnit("%d / %d requests"), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)),
	)
}

func (b *progressBars) Set(done int) { b.bar.SetCurrent(int64(done)) }

// End completes the bar at the count reached: a design that fell behind
// schedule leaves requests unsent, and its bar must still finish.
func (b *progressBars) End() { b.bar.SetTotal(-1, true) }
