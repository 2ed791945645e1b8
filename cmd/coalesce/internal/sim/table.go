package sim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes the report as two aligned tables, counts and latencies,
// a legend of the designs and columns, and the summary of where each design
// wins and loses.
func (r *Report) WriteTable(w io.Writer) error {
	c := r.Config
	// Three short lines rather than one: the report shows them in a
	// fixed-width block that would cut a long line off.
	fmt.Fprintf(w, "stream: %d requests over %v from %d agents (%.0f/s, at most %d in flight)\n",
		r.Stream.Requests, c.Duration, c.Agents, r.Stream.Rate, c.InFlight)
	fmt.Fprintf(w, "keys: %d distinct; %.0f%% of requests repeat a key requested within the last %v\n",
		r.Stream.DistinctKeys, 100*r.Stream.RepeatShare, ((c.TaskMin + c.TaskMax) / 2).Round(100*time.Microsecond))
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
		}{{"hit", s.HitLat}, {"joined", s.JoinedLat}, {"remote", s.RemoteLat}, {"miss", s.MissLat}, {"all", s.All}, {"end-to-end", s.EndToEnd}} {
			if row.kind == "remote" && s.Cluster == nil {
				continue // a row of the cluster design only
			}
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
	fmt.Fprintln(w)
	r.writeLegend(w)
	fmt.Fprintln(w)
	r.writeSummary(w)
	return nil
}

// columnLegend explains the columns of both tables, in their order.
var columnLegend = [][2]string{
	{"requests", "requests sent and answered"},
	{"not sent", "requests still waiting for a free slot of their agent when the run's time was up (the design fell behind)"},
	{"computed", "times the task ran"},
	{"duplicates", "computations beyond one per distinct key: a key computed again while cached or in flight, or after eviction"},
	{"hits", "requests answered from a cache without waiting for a computation"},
	{"joined", "requests that waited for a computation another request had started"},
	{"misses", "requests that started a computation (one per computation)"},
	{"errors", "requests that failed or got a wrong result"},
	{"in flight", "mean requests outstanding; req/s: requests answered per second"},
	{"CPU s", "CPU time of the whole process (designs and replay) during the run"},
	{"kind", "hit, joined, miss as above; remote (cluster): the joined requests a node answered with another node's result from Redis; all: every request; end-to-end: from the request's due time, adding its wait for a slot"},
	{"p50..max", "latency percentiles, from sending the request to its answer (end-to-end: from its due time)"},
}

func (r *Report) writeLegend(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "designs:")
	for _, s := range r.Results {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Design, s.Title)
	}
	fmt.Fprintln(tw, "columns:")
	for _, c := range columnLegend {
		fmt.Fprintf(tw, "  %s\t%s\n", c[0], c[1])
	}
	tw.Flush()
}

// tieShare is how far above the best value a figure still ties with it:
// latencies and CPU time on a shared machine vary by that much from run to
// run.
const tieShare = 0.10

// measure is one line of the summary: a figure of every design where lower
// is better.
type measure struct {
	name string
	// value returns the figure of a result, or false if it has none (no
	// hits, no requests answered).
	value  func(Result) (float64, bool)
	format func(float64) string
	// count marks figures that are counts of requests: they also tie
	// within a thousandth of the stream, a few requests' luck.
	count bool
}

var measures = []measure{
	{name: "duplicate computations", count: true,
		value:  func(r Result) (float64, bool) { return float64(r.Duplicates), true },
		format: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }},
	{name: "requests not sent", count: true,
		value:  func(r Result) (float64, bool) { return float64(r.NotSent), true },
		format: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }},
	{name: "hit latency p50", value: latencyValue(func(r Result) Latency { return r.HitLat }, false), format: durFloat},
	{name: "hit latency p99", value: latencyValue(func(r Result) Latency { return r.HitLat }, true), format: durFloat},
	{name: "miss latency p50", value: latencyValue(func(r Result) Latency { return r.MissLat }, false), format: durFloat},
	{name: "miss latency p99", value: latencyValue(func(r Result) Latency { return r.MissLat }, true), format: durFloat},
	{name: "end-to-end p50", value: latencyValue(func(r Result) Latency { return r.EndToEnd }, false), format: durFloat},
	{name: "end-to-end p99", value: latencyValue(func(r Result) Latency { return r.EndToEnd }, true), format: durFloat},
	{name: "CPU per request",
		value: func(r Result) (float64, bool) {
			if r.Requests == 0 {
				return 0, false
			}
			return r.CPUSeconds * 1e9 / float64(r.Requests), true
		},
		format: durFloat},
}

func latencyValue(of func(Result) Latency, p99 bool) func(Result) (float64, bool) {
	return func(r Result) (float64, bool) {
		l := of(r)
		if l.N == 0 {
			return 0, false
		}
		if p99 {
			return float64(l.P99), true
		}
		return float64(l.P50), true
	}
}

func durFloat(ns float64) string { return durString(time.Duration(ns)) }

// ranked is one design's figure in a measure.
type ranked struct {
	design string
	value  float64
}

// rank orders the designs that have the figure, best first, and returns
// how many of them tie with the best.
func (r *Report) rank(m measure) (order []ranked, best int) {
	for _, res := range r.Results {
		if !ranks(res) {
			continue
		}
		if v, ok := m.value(res); ok {
			order = append(order, ranked{res.Design, v})
		}
	}
	slices.SortStableFunc(order, func(a, b ranked) int { return cmp.Compare(a.value, b.value) })
	if len(order) == 0 {
		return nil, 0
	}
	limit := order[0].value * (1 + tieShare)
	if m.count {
		limit = max(limit, order[0].value+float64(r.Stream.Requests)/1000)
	}
	for best < len(order) && order[best].value <= limit {
		best++
	}
	return order, best
}

// writeSummary states, for each measure, which designs are best and how far
// behind the others are; then where this project's library wins and loses.
func (r *Report) writeSummary(w io.Writer) {
	ranked := 0
	for _, res := range r.Results {
		if ranks(res) {
			ranked++
		}
	}
	if ranked < 2 {
		r.writeComparisons(w)
		return
	}
	fmt.Fprintf(w, "summary (lower is better; within %.0f%% of the best is a tie):\n", 100*tieShare)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var wins, losses []string
	for _, m := range measures {
		order, best := r.rank(m)
		if len(order) < 2 {
			continue
		}
		var b strings.Builder
		if best == len(order) {
			b.WriteString("all tie: ")
		} else {
			b.WriteString("best: ")
		}
		for i, o := range order {
			switch {
			case i == best:
				b.WriteString("; then ")
			case i > 0:
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s", o.design, m.format(o.value))
			if i >= best && order[0].value > 0 {
				fmt.Fprintf(&b, " (%s)", ratioString(o.value/order[0].value))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", m.name, b.String())
		for i, o := range order {
			if o.design != ours {
				continue
			}
			if i < best {
				wins = append(wins, m.name)
			} else {
				losses = append(losses, fmt.Sprintf("%s (%s against %s's %s)", m.name, m.format(o.value), order[0].design, m.format(order[0].value)))
			}
		}
	}
	tw.Flush()
	// A design that fell behind answered only the requests it got to
	// send, so its latencies are not over the same stream as the others'.
	var behind []string
	for _, res := range r.Results {
		if r.Stream.Requests > 0 && res.NotSent*100 > r.Stream.Requests {
			behind = append(behind, fmt.Sprintf("%s %.0f%%", res.Design, 100*float64(res.NotSent)/float64(r.Stream.Requests)))
		}
	}
	if len(behind) > 0 {
		fmt.Fprintln(w, wrap("fell behind, leaving part of the stream unsent: "+strings.Join(behind, ", ")+
			"; their latencies are of the requests they sent.", 100, "  "))
	}
	r.writeComparisons(w)
	if _, ok := r.Result(ours); !ok {
		return
	}
	line := ours + ": "
	if len(wins) > 0 {
		line += "best or tied in " + strings.Join(wins, ", ")
	} else {
		line += "best in nothing"
	}
	if len(losses) > 0 {
		line += "; behind in " + strings.Join(losses, ", ")
	}
	fmt.Fprintln(w, wrap(line+".", 100, "  "))
}

// boundary says what the process boundary added to a request: the daemon
// design's figures less the in-process library's, when both ran.
func (r *Report) boundary() (string, bool) {
	in, iok := r.Result(ours)
	out, ook := r.Result("daemon")
	if !iok || !ook {
		return "", false
	}
	var parts []string
	for _, f := range []struct {
		name    string
		in, out Latency
	}{{"hit", in.HitLat, out.HitLat}, {"miss", in.MissLat, out.MissLat}} {
		if f.in.N == 0 || f.out.N == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s p50 %s (%s against %s), p99 %s", f.name,
			signedDur(f.out.P50-f.in.P50), durString(f.out.P50), durString(f.in.P50), signedDur(f.out.P99-f.in.P99)))
	}
	if in.Requests > 0 && out.Requests > 0 {
		perReq := func(res Result) time.Duration {
			return time.Duration(res.CPUSeconds * 1e9 / float64(res.Requests))
		}
		parts = append(parts, "CPU per request "+signedDur(perReq(out)-perReq(in)))
	}
	if len(parts) == 0 {
		return "", false
	}
	return "the process boundary (daemon less " + ours + "): " + strings.Join(parts, "; ") + ".", true
}

// ranks reports whether a result takes part in the summary's ranking.
// The cluster design does not: its nodes have the workers of one machine
// each, so its latencies are those of a larger system, compared in its
// own line instead.
func ranks(res Result) bool { return res.Cluster == nil }

// writeComparisons writes the summary's lines that need no ranking:
// computations per input, and what the process boundary and the cluster
// added, when their designs ran.
func (r *Report) writeComparisons(w io.Writer) {
	if len(r.Results) == 0 {
		return
	}
	fmt.Fprintln(w, wrap(r.perInput(), 100, "  "))
	if line, ok := r.boundary(); ok {
		fmt.Fprintln(w, wrap(line, 100, "  "))
	}
	if line, ok := r.clusterLine(); ok {
		fmt.Fprintln(w, wrap(line, 100, "  "))
	}
}

// perInput lists computations ÷ distinct inputs for every design: 1.000
// when each input sent was computed exactly once.
func (r *Report) perInput() string {
	var parts []string
	for _, res := range r.Results {
		parts = append(parts, fmt.Sprintf("%s %.3f", res.Design, res.ComputationsPerInput))
	}
	return "computations ÷ distinct inputs (1.000: each input computed once): " + strings.Join(parts, ", ") + "."
}

// clusterLine says what the cluster design's tiers did and what Redis
// added to a request: measured inside the nodes (the tier's time on a
// miss's path, the Loads that found another node's result), and the
// cluster's latencies less the in-process library's, when both ran.
func (r *Report) clusterLine() (string, bool) {
	cl, ok := r.Result("cluster")
	if !ok || cl.Cluster == nil {
		return "", false
	}
	c := cl.Cluster
	nodes := fmt.Sprintf("%d nodes", c.Nodes)
	if c.Nodes == 1 {
		nodes = "1 node"
	}
	line := fmt.Sprintf("cluster (%s, one Redis): computations ÷ distinct inputs %.3f (%d computations of %d inputs); "+
		"leases taken %d, stolen %d, lost %d; remote hits %d, remote joins %d; Redis errors %d.",
		nodes, cl.ComputationsPerInput, cl.Computations, cl.DistinctSent,
		c.LeasesTaken, c.LeasesStolen, c.LeasesLost, c.RemoteHits, c.RemoteJoins, c.RedisErrors)
	pct := func(l Latency) string {
		if l.N == 0 {
			return "none"
		}
		return fmt.Sprintf("p50 %s, p99 %s", durString(l.P50), durString(l.P99))
	}
	line += fmt.Sprintf(" Redis's time on a miss's path (the lease taken, then the result saved): %s; on a remote result (the load that found it): %s.",
		pct(c.RedisPerMiss), pct(c.RedisPerRemote))
	in, ok := r.Result(ours)
	if !ok {
		return line, true
	}
	var parts []string
	for _, f := range []struct {
		name    string
		in, out Latency
	}{{"miss", in.MissLat, cl.MissLat}, {"hit", in.HitLat, cl.HitLat}, {"joined", in.JoinedLat, cl.JoinedLat}} {
		if f.in.N == 0 || f.out.N == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s p50 %s (%s against %s), p99 %s (%s against %s)", f.name,
			signedDur(f.out.P50-f.in.P50), durString(f.out.P50), durString(f.in.P50),
			signedDur(f.out.P99-f.in.P99), durString(f.out.P99), durString(f.in.P99)))
	}
	if cl.RemoteLat.N > 0 {
		parts = append(parts, fmt.Sprintf("a remote result took p50 %s, p99 %s (a remote hit is a round trip where one process would have hit memory; a remote join waits for the computation, as a local join does)",
			durString(cl.RemoteLat.P50), durString(cl.RemoteLat.P99)))
	}
	if len(parts) > 0 {
		line += " Cluster less " + ours + ": " + strings.Join(parts, "; ") + "."
		if c.Nodes > 1 {
			line += fmt.Sprintf(" The %d nodes have %d× the workers, so queueing differs: with workers to spare (a large --workers), or with --nodes 1, the miss difference is what Redis adds.", c.Nodes, c.Nodes)
		}
	}
	return line, true
}

// signedDur formats a difference of durations with its sign.
func signedDur(d time.Duration) string {
	if d < 0 {
		return "-" + durString(-d)
	}
	return "+" + durString(d)
}

// wrap breaks s at spaces into lines of at most width characters where it
// can, indenting the lines after the first.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		switch {
		case i == 0:
		case n+1+len(word) > width:
			b.WriteString("\n" + indent)
			n = len(indent)
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// ours is the design of this project's library.
const ours = "coalesce"

// ratioString formats how many times the best a figure is; below 10 with
// two decimals, so that a figure just past the tie reads as more than 1.1x.
func ratioString(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64) + "x"
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64) + "x"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "x"
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
