package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteTable writes the report as two aligned tables, counts and latencies,
// followed by the comparison of hit latency against the user's design.
func (r *Report) WriteTable(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "stream: %d requests over %v from %d agents (%.0f/s, at most %d in flight), %d distinct keys, %.0f%% repeat a key requested within the last %v\n",
		r.Stream.Requests, c.Duration, c.Agents, r.Stream.Rate, c.InFlight, r.Stream.DistinctKeys,
		100*r.Stream.RepeatShare, ((c.TaskMin + c.TaskMax) / 2).Round(100*time.Microsecond))
	fmt.Fprintf(w, "tasks: %s, %s %v..%v (mean %v); %d workers; cache %s\n\n",
		c.Task, c.TaskDist, c.TaskMin, c.TaskMax, r.Stream.MeanTask.Round(100*time.Microsecond), c.Workers, bytesString(c.CacheBytes))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "design\trequests\tnot sent\tcomputed\tduplicates\thits\tjoined\tmisses\terrors\tin flight\treq/s\tCPU s\t")
	for _, s := range r.Results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.0f\t%.2f\t\n",
			s.Design, s.Requests, s.NotSent, s.Computations, s.Duplicates, s.Hits, s.Joined, s.Misses, s.Errors,
			s.MeanInFlight, s.Throughput, s.CPUSeconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "design\tkind\tn\tp50\tp95\tp99\tmax\t")
	for _, s := range r.Results {
		for _, row := range []struct {
			kind string
			l    Latency
		}{{"hit", s.HitLat}, {"joined", s.JoinedLat}, {"miss", s.MissLat}, {"all", s.All}, {"end-to-end", s.EndToEnd}} {
			if row.l.N == 0 {
				fmt.Fprintf(tw, "%s\t%s\t0\t-\t-\t-\t-\t\n", s.Design, row.kind)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", s.Design, row.kind, row.l.N,
				durString(row.l.P50), durString(row.l.P95), durString(row.l.P99), durString(row.l.Max))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nlatency is from sending to the answer; end-to-end is from the request's due time, so it adds the wait for a free slot of its agent.")
	if line := r.HitRatioLine(); line != "" {
		fmt.Fprintf(w, "\n%s\n", line)
	}
	return nil
}

// HitRatio returns the p99 hit latency of the user's design divided by
// that of this project's library, and whether both ran with hits.
func (r *Report) HitRatio() (ratio float64, user, ours time.Duration, ok bool) {
	u, uok := r.Result("user")
	o, ook := r.Result("coalesce")
	if !uok || !ook || u.HitLat.N == 0 || o.HitLat.N == 0 {
		return 0, 0, 0, false
	}
	return float64(u.HitLat.P99) / float64(max(o.HitLat.P99, 1)), u.HitLat.P99, o.HitLat.P99, true
}

// HitRatioLine is the sentence comparing p99 hit latency with the user's
// design, or "" when either design did not run.
func (r *Report) HitRatioLine() string {
	ratio, u, o, ok := r.HitRatio()
	if !ok {
		return ""
	}
	return fmt.Sprintf("p99 hit latency: user's design %s, coalesce %s: %.0fx lower", durString(u), durString(o), ratio)
}

// WriteJSON writes the report as JSON: the stream and one object per
// design with the figures of the table.
func (r *Report) WriteJSON(w io.Writer) error {
	type out struct {
		*Report
		P99HitRatio *float64 `json:"p99_hit_ratio_user_over_coalesce,omitempty"`
	}
	o := out{Report: r}
	if ratio, _, _, ok := r.HitRatio(); ok {
		o.P99HitRatio = &ratio
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

// durString formats a latency with three significant digits in a unit
// that suits it.
func durString(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	}
	return sig3(d.Seconds()) + "s"
}

// sig3 formats v (1 <= v < 1000) with three significant digits and no
// exponent.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<40 && n%(1<<40) == 0:
		return fmt.Sprintf("%d TiB", n>>40)
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

// approxBytes formats n in the largest binary unit it reaches, with three
// significant digits.
func approxBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return sig3(float64(n)/(1<<40)) + " TiB"
	case n >= 1<<30:
		return sig3(float64(n)/(1<<30)) + " GiB"
	case n >= 1<<20:
		return sig3(float64(n)/(1<<20)) + " MiB"
	case n >= 1<<10:
		return sig3(float64(n)/(1<<10)) + " KiB"
	}
	return fmt.Sprintf("%d B", n)
}
