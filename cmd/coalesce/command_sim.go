package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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

func runSim(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("coalesce sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        sim.Config
		quick      = fs.Bool("quick", false, "a run of a few seconds: 2s per design over 150 keys (unless set)")
		task       = fs.String("task", "sleep", "how a task spends its time: sleep, or cpu to burn a core")
		designs    = fs.String("designs", strings.Join(sim.DesignNames(), ","), "comma-separated designs to run, in order")
		tracePath  = fs.String("trace", "", "take the key stream from this trace (gzip, one decimal key per line) instead of the Zipf draw")
		jsonOut    = fs.Bool("json", false, "print the results as JSON instead of tables (and no progress bar)")
		reportPath = fs.String("report", "coalesce-sim.html", "write an HTML report with charts to this file; empty for none")
		noProgress = fs.Bool("no-progress", false, "no progress bar even on a terminal")
		cacheMiB   = fs.Int64("cache-mib", 1024, "result cache budget in MiB of the designs that cache")
		seed       = fs.Uint64("seed", 1, "seed of the request stream")
	)
	fs.IntVar(&cfg.Agents, "agents", 20, "agents sending requests")
	fs.IntVar(&cfg.InFlight, "in-flight", 50, "requests the agents may have outstanding in total")
	fs.Float64Var(&cfg.Rate, "rate", 0, "arrivals per second; 0 derives it by Little's law: in-flight / mean task duration")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long each design runs")
	fs.IntVar(&cfg.Workers, "workers", 0, "computations at once in every design; 0 = GOMAXPROCS")
	fs.IntVar(&cfg.Keys, "keys", 1000, "size of the Zipf key space")
	fs.Float64Var(&cfg.ZipfS, "zipf", 1.1, "Zipf exponent (> 1); larger concentrates requests on fewer keys")
	fs.StringVar(&cfg.TaskDist, "task-dist", "uniform", "task duration distribution: uniform, fixed, normal or exp")
	fs.DurationVar(&cfg.TaskMin, "task-min", 15*time.Millisecond, "shortest task")
	fs.DurationVar(&cfg.TaskMax, "task-max", 30*time.Millisecond, "longest task")
	fs.IntVar(&cfg.InputMin, "input-min", 256, "smallest input in bytes")
	fs.IntVar(&cfg.InputMax, "input-max", 1024, "largest input in bytes")
	fs.IntVar(&cfg.OutputSize, "output", 128, "result size in bytes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; sim takes only flags", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["duration"] {
			cfg.Duration = 2 * time.Second
		}
		if !set["keys"] {
			cfg.Keys = 150
		}
	}
	cfg.Task = sim.TaskKind(*task)
	cfg.CacheBytes = *cacheMiB << 20
	if *cacheMiB <= 0 {
		return fmt.Errorf("cache-mib is %d; it must be > 0", *cacheMiB)
	}
	cfg.Seed = *seed
	if *seed == 0 {
		return errors.New("seed is 0; use any other value (0 is reserved for the default)")
	}
	for _, d := range strings.Split(*designs, ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Designs = append(cfg.Designs, d)
		}
	}
	if len(cfg.Designs) == 0 {
		return fmt.Errorf("no designs given; choose among %s", strings.Join(sim.DesignNames(), ","))
	}
	if *tracePath != "" {
		// The stream needs at most rate×duration keys; reading more of a
		// multi-million-line trace would only cost time.
		c := cfg.Defaults()
		keys, err := sim.ReadTraceKeys(*tracePath, int(c.Rate*c.Duration.Seconds())+1)
		if err != nil {
			return err
		}
		cfg.TraceKeys = keys
	}
	if err := cfg.Defaults().Validate(); err != nil {
		return err
	}

	var bars *mpb.Progress
	if !*jsonOut && !*noProgress && isTerminal(stderr) {
		bars = mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(40))
		cfg.Progress = &progressBars{p: bars}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := sim.Run(ctx, cfg)
	if bars != nil {
		bars.Wait()
	}
	if rep == nil {
		return err
	}
	if err != nil {
		fmt.Fprintf(stderr, "coalesce sim: %v; the results so far follow\n", err)
	}
	if *jsonOut {
		if werr := rep.WriteJSON(stdout); werr != nil {
			return werr
		}
	} else if werr := rep.WriteTable(stdout); werr != nil {
		return werr
	}
	if *reportPath != "" && len(rep.Results) > 0 {
		if werr := writeReport(*reportPath, rep, args); werr != nil {
			return werr
		}
		if !*jsonOut {
			fmt.Fprintf(stdout, "report: %s\n", *reportPath)
		}
	}
	return err
}

func writeReport(path string, rep *sim.Report, args []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	command := strings.TrimSpace("coalesce sim " + strings.Join(args, " "))
	if err := rep.WriteHTML(f, command); err != nil {
		f.Close()
		return fmt.Errorf("writing the report %s: %w", path, err)
	}
	return f.Close()
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
