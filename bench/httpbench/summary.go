package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// The results file has one line per measurement, tab-separated, written by
// the stampede subcommand and by the script around wrk:
//
//	stampede LABEL ROUND computations n first_ms p50_ms max_ms sources
//	hit      LABEL ROUND hits/s p50_us p99_us requests errors cpu_s wall_s faults
//
// (cpu_s and faults, minor page faults, are the server's over the run: its
// process and its children, nginx's workers.)
//
// The summary gives, for each target, the median over the rounds and the
// spread (min-max), and compares each target with nginx round by round:
// the rounds alternate the targets, so the ratio within a round cancels
// most of what the other jobs on the machine did to both.

// row is one measurement.
type row struct {
	kind, label string
	round       int
	v           []float64
	note        string // a stampede's sources: how its answers were served
}

// reference is the target the others are compared with.
const reference = "nginx"

func readRows(r io.Reader) ([]row, error) {
	var rows []row
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 4 || (f[0] != "stampede" && f[0] != "hit") {
			continue // anything else (a comment, a log line) is not a result
		}
		round, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: round %q: %v", line, f[2], err)
		}
		rw := row{kind: f[0], label: f[1], round: round}
		numbers := f[3:]
		if f[0] == "stampede" {
			numbers = f[3 : len(f)-1] // the last field is the sources
			rw.note = f[len(f)-1]
		}
		for _, s := range numbers {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q: %v", line, s, err)
			}
			rw.v = append(rw.v, x)
		}
		want := map[string]int{"stampede": 5, "hit": 8}[f[0]]
		if len(rw.v) != want {
			return nil, fmt.Errorf("line %d: %d numbers for %s, want %d", line, len(rw.v), f[0], want)
		}
		rows = append(rows, rw)
	}
	return rows, sc.Err()
}

// stat is the median of xs with its spread.
type stat struct{ med, lo, hi float64 }

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{m, s[0], s[len(s)-1]}
}

func (s stat) format(prec int, unit string) string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	if s.lo == s.hi {
		return f(s.med) + unit
	}
	return fmt.Sprintf("%s%s (%s-%s)", f(s.med), unit, f(s.lo), f(s.hi))
}

// series collects one value per round for each label, in order of first
// appearance.
type series struct {
	labels []string
	by     map[string]map[int]float64
}

func collect(rows []row, kind string, col int) series {
	s := series{by: map[string]map[int]float64{}}
	for _, r := range rows {
		if r.kind != kind {
			continue
		}
		if s.by[r.label] == nil {
			s.labels = append(s.labels, r.label)
			s.by[r.label] = map[int]float64{}
		}
		s.by[r.label][r.round] = r.v[col]
	}
	return s
}

func (s series) values(label string) []float64 {
	var xs []float64
	for _, x := range s.by[label] {
		xs = append(xs, x)
	}
	return xs
}

// ratio is label's value over the reference's, round by round.
func (s series) ratio(label string) []float64 {
	var xs []float64
	for round, x := range s.by[label] {
		if ref, ok := s.by[reference][round]; ok && ref != 0 {
			xs = append(xs, x/ref)
		}
	}
	return xs
}

func runSummary(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: httpbench summary RESULTS.tsv")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := readRows(f)
	if err != nil {
		return err
	}
	summarize(rows, stdout)
	return nil
}

// summarize prints the two tables: medians over the rounds, (min-max).
func summarize(rows []row, w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()

	comp := collect(rows, "stampede", 0)
	if len(comp.labels) > 0 {
		first, p50, mx := collect(rows, "stampede", 2), collect(rows, "stampede", 3), collect(rows, "stampede", 4)
		fmt.Fprintf(tw, "stampede: 50 requests at once for one uncached input, upstream 20 ms; median (min-max) of %d rounds\n", len(comp.values(comp.labels[0])))
		fmt.Fprintln(tw, "target\tcomputations\tfirst answer\tp50 answer\tlast answer\tlast - first\tlast vs nginx\tserved as (first round)")
		for _, l := range comp.labels {
			var spread []float64
			for round, x := range mx.by[l] {
				spread = append(spread, x-first.by[l][round])
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l, statOf(comp.values(l)).format(0, ""),
				statOf(first.values(l)).format(1, " ms"), statOf(p50.values(l)).format(1, " ms"),
				statOf(mx.values(l)).format(1, " ms"), statOf(spread).format(1, " ms"),
				statOf(mx.ratio(l)).format(3, "x"), firstNote(rows, l))
		}
		fmt.Fprintln(tw)
	}

	rps := collect(rows, "hit", 0)
	if len(rps.labels) > 0 {
		p50, p99 := collect(rows, "hit", 1), collect(rows, "hit", 2)
		reqs, errs, cpu, wall, faults := collect(rows, "hit", 3), collect(rows, "hit", 4), collect(rows, "hit", 5), collect(rows, "hit", 6), collect(rows, "hit", 7)
		// CPU per hit, as a series of its own, so that it too is compared
		// with nginx round by round.
		perHit := series{labels: rps.labels, by: map[string]map[int]float64{}}
		for _, l := range rps.labels {
			perHit.by[l] = map[int]float64{}
			for round, c := range cpu.by[l] {
				perHit.by[l][round] = c / reqs.by[l][round] * 1e6
			}
		}
		fmt.Fprintf(tw, "cached hits: wrk, 50 keep-alive connections, one 512-byte POST; median (min-max) of %d rounds\n", len(rps.values(rps.labels[0])))
		fmt.Fprintln(tw, "target\thits/s\tvs nginx\tp50\tp99\tserver CPU/hit\tvs nginx\tserver cores\tpage faults/hit\terrors")
		for _, l := range rps.labels {
			var cores, f, e []float64
			for round, c := range cpu.by[l] {
				cores = append(cores, c/wall.by[l][round])
				f = append(f, faults.by[l][round]/reqs.by[l][round])
				e = append(e, errs.by[l][round])
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l, statOf(rps.values(l)).format(0, ""),
				statOf(rps.ratio(l)).format(2, "x"), statOf(ms(p50.values(l))).format(3, " ms"),
				statOf(ms(p99.values(l))).format(3, " ms"), statOf(perHit.values(l)).format(1, " µs"),
				statOf(perHit.ratio(l)).format(2, "x"), statOf(cores).format(2, ""), statOf(f).format(2, ""),
				strconv.FormatFloat(sum(e), 'f', 0, 64))
		}
	}
}

func ms(us []float64) []float64 {
	out := make([]float64, len(us))
	for i, x := range us {
		out[i] = x / 1000
	}
	return out
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// firstNote is the note of label's first stampede.
func firstNote(rows []row, label string) string {
	for _, r := range rows {
		if r.kind == "stampede" && r.label == label {
			return r.note
		}
	}
	return ""
}
