package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// row is one workload at one size: the hit ratio of each policy.
type row struct {
	trace string
	size  int
	ratio map[string]float64
}

// rows groups results, which Run orders by workload and size, and returns
// the policies in the order they appear.
func rows(results []Result) ([]row, []string) {
	var out []row
	var policies []string
	for _, r := range results {
		if !slices.Contains(policies, r.Policy) {
			policies = append(policies, r.Policy)
		}
		if n := len(out); n == 0 || out[n-1].trace != r.Trace || out[n-1].size != r.Size {
			out = append(out, row{trace: r.Trace, size: r.Size, ratio: map[string]float64{}})
		}
		if r.Error == "" {
			out[len(out)-1].ratio[r.Policy] = r.HitRatio
		}
	}
	return out, policies
}

var columnNames = map[string]string{
	Ours: "ours", LRU: "LRU", Otter: "otter", OPT: "OPT",
	ARC: "ARC", SLRU: "SLRU", Clock: "CLOCK",
}

// WriteTable writes results as an aligned table of hit ratios in percent,
// one line per workload and size, with ours−LRU when both were measured;
// markdown selects a GitHub table instead.
func WriteTable(w io.Writer, results []Result, markdown bool) error {
	rs, policies := rows(results)
	header := []string{"trace", "size"}
	for _, p := range policies {
		header = append(header, columnNames[p])
	}
	diff := slices.Contains(policies, Ours) && slices.Contains(policies, LRU)
	if diff {
		header = append(header, "ours−LRU")
	}
	var lines [][]string
	for _, r := range rs {
		line := []string{r.trace, fmt.Sprint(r.size)}
		for _, p := range policies {
			if v, ok := r.ratio[p]; ok {
				line = append(line, fmt.Sprintf("%.2f", 100*v))
			} else {
				line = append(line, "n/a")
			}
		}
		if diff {
			ours, ok1 := r.ratio[Ours]
			lru, ok2 := r.ratio[LRU]
			if ok1 && ok2 {
				line = append(line, fmt.Sprintf("%+.2f", 100*(ours-lru)))
			} else {
				line = append(line, "n/a")
			}
		}
		lines = append(lines, line)
	}
	if markdown {
		var b strings.Builder
		b.WriteString("| " + strings.Join(header, " | ") + " |\n|---|" + strings.Repeat("---:|", len(header)-1) + "\n")
		for _, l := range lines {
			b.WriteString("| " + strings.Join(l, " | ") + " |\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, l := range lines {
		fmt.Fprintln(tw, strings.Join(l, "\t")+"\t")
	}
	return tw.Flush()
}

// WriteJSON writes results as a JSON array, one object per workload, size
// and policy, one object per line so that line tools work too.
func WriteJSON(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("[\n")
	for i, r := range results {
		j, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(j)
		if i < len(results)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary condenses results against the acceptance criteria of the store:
// hit ratio at least LRU's everywhere, and a mean gap to OPT no worse than
// otter's.
type Summary struct {
	// Points is the number of (workload, size) pairs with both ours and LRU.
	Points int
	// AtLeastLRU counts the points where ours ≥ LRU; Below lists the others.
	AtLeastLRU int
	Below      []string
	// GapOurs and GapOtter are the mean of OPT minus the policy's hit
	// ratio, over the points where ours, otter and OPT were all measured.
	GapOurs, GapOtter float64
	GapPoints         int
	// PerTrace holds the same figures for each workload, in order.
	PerTrace []TraceSummary
}

// TraceSummary is the Summary of one workload.
type TraceSummary struct {
	Trace              string
	Points, AtLeastLRU int
	GapOurs, GapOtter  float64
	GapPoints          int
}

// Summarize computes the Summary of results.
func Summarize(results []Result) Summary {
	rs, _ := rows(results)
	var s Summary
	for _, r := range rs {
		if n := len(s.PerTrace); n == 0 || s.PerTrace[n-1].Trace != r.trace {
			s.PerTrace = append(s.PerTrace, TraceSummary{Trace: r.trace})
		}
		t := &s.PerTrace[len(s.PerTrace)-1]
		ours, okOurs := r.ratio[Ours]
		if lru, ok := r.ratio[LRU]; ok && okOurs {
			s.Points++
			t.Points++
			// Hit ratios are exact fractions of the same request count, so
			// equal hit counts compare equal.
			if ours >= lru {
				s.AtLeastLRU++
				t.AtLeastLRU++
			} else {
				s.Below = append(s.Below, fmt.Sprintf("%s@%d (%.2f < %.2f)", r.trace, r.size, 100*ours, 100*lru))
			}
		}
		otter, okOtter := r.ratio[Otter]
		opt, okOPT := r.ratio[OPT]
		if okOurs && okOtter && okOPT {
			s.GapPoints++
			s.GapOurs += opt - ours
			s.GapOtter += opt - otter
			t.GapPoints++
			t.GapOurs += opt - ours
			t.GapOtter += opt - otter
		}
	}
	if s.GapPoints > 0 {
		s.GapOurs /= float64(s.GapPoints)
		s.GapOtter /= float64(s.GapPoints)
	}
	for i := range s.PerTrace {
		if t := &s.PerTrace[i]; t.GapPoints > 0 {
			t.GapOurs /= float64(t.GapPoints)
			t.GapOtter /= float64(t.GapPoints)
		}
	}
	return s
}

// WriteSummary writes s: a line per workload (points where ours ≥ LRU, mean
// gap to OPT of ours and otter), the totals, and the reasons of the
// policies that could not run (n/a in the table) in results. markdown
// writes the per-workload lines as a GitHub table.
func WriteSummary(w io.Writer, s Summary, results []Result, markdown bool) error {
	var b strings.Builder
	if len(s.PerTrace) > 1 && s.Points > 0 {
		header := []string{"trace", "ours ≥ LRU", "gap to OPT: ours", "gap to OPT: otter"}
		var lines [][]string
		for _, t := range s.PerTrace {
			lines = append(lines, []string{t.Trace, fmt.Sprintf("%d/%d", t.AtLeastLRU, t.Points),
				fmt.Sprintf("%.2f", 100*t.GapOurs), fmt.Sprintf("%.2f", 100*t.GapOtter)})
		}
		if markdown {
			b.WriteString("| " + strings.Join(header, " | ") + " |\n|---|---:|---:|---:|\n")
			for _, l := range lines {
				b.WriteString("| " + strings.Join(l, " | ") + " |\n")
			}
		} else {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
			for _, l := range lines {
				fmt.Fprintln(tw, strings.Join(l, "\t")+"\t")
			}
			tw.Flush()
		}
		b.WriteString("\n")
	}
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(&b, "n/a: %s at size %d, %s: %s\n", r.Trace, r.Size, r.Policy, r.Error)
		}
	}
	if s.Points > 0 {
		fmt.Fprintf(&b, "ours ≥ LRU at %d of %d points", s.AtLeastLRU, s.Points)
		if len(s.Below) > 0 {
			fmt.Fprintf(&b, "; below at %s", strings.Join(s.Below, ", "))
		}
		b.WriteString("\n")
	}
	if s.GapPoints > 0 {
		fmt.Fprintf(&b, "mean gap to OPT over %d points: ours %.2f points, otter %.2f points\n", s.GapPoints, 100*s.GapOurs, 100*s.GapOtter)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
