package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// palette gives each design the same colour in every chart.
var palette = []string{"#7f7f7f", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// WriteHTML writes a self-contained HTML report (inline SVG, no scripts, no
// external resources): the tables, the latency distributions of every
// design overall and per kind, and the computations per design. command is
// the command line that produced it.
func (r *Report) WriteHTML(w io.Writer, command string) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>coalesce sim</title><style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:1em}
svg text{font-family:system-ui,sans-serif;font-size:11px}
</style></head><body>
<h1>coalesce sim</h1>
`)
	fmt.Fprintf(&b, "<p>Produced by <code>%s</code> on %s.</p>\n", html.EscapeString(command), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		return err
	}
	fmt.Fprintf(&b, "<h2>Results</h2>\n<pre>%s</pre>\n", html.EscapeString(table.String()))

	b.WriteString("<h2>Latency distributions</h2>\n<p>Cumulative share of requests answered within a latency (log scale); further left is faster.</p>\n<div class=\"charts\">\n")
	for _, k := range []struct {
		title string
		kind  int // -1 for all
	}{{"all requests", -1}, {"hits", int(Hit)}, {"joined", int(Joined)}, {"misses", int(Miss)}} {
		var series []cdfSeries
		for i, res := range r.Results {
			var lat []time.Duration
			if k.kind < 0 {
				for _, l := range res.latencies {
					lat = append(lat, l...)
				}
				sortDurations(lat)
			} else {
				lat = res.latencies[k.kind]
			}
			series = append(series, cdfSeries{name: res.Design, color: palette[i%len(palette)], sorted: lat})
		}
		b.WriteString(cdfSVG(k.title, series))
	}
	b.WriteString("</div>\n<h2>Computations</h2>\n<p>Computations per design: distinct keys computed, and duplicates (the same key computed again while its result was cached or in flight).</p>\n")
	b.WriteString(r.computationsSVG())
	b.WriteString("\n<h2>Designs</h2>\n<ul>\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "<li><b>%s</b>: %s</li>\n", html.EscapeString(res.Design), html.EscapeString(res.Title))
	}
	b.WriteString("</ul>\n</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type cdfSeries struct {
	name, color string
	sorted      []time.Duration
}

// cdfSVG draws the empirical distribution functions of the series on a
// log-scaled latency axis spanning whole decades.
func cdfSVG(title string, series []cdfSeries) string {
	const W, H, left, right, top, bottom = 520, 300, 50, 110, 28, 36
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		if len(s.sorted) == 0 {
			continue
		}
		lo = math.Min(lo, float64(max(s.sorted[0], 1)))
		hi = math.Max(hi, float64(max(s.sorted[len(s.sorted)-1], 1)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, W, H, W, H)
	fmt.Fprintf(&b, `<text x="%d" y="16" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	if math.IsInf(lo, 1) {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no requests of this kind</text></svg>`, left, top+40)
		return b.String()
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	x := func(d float64) float64 { return left + (math.Log10(math.Max(d, 1))-dlo)/(dhi-dlo)*pw }
	y := func(f float64) float64 { return top + (1-f)*ph }
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, left, top, pw, ph)
	for dec := dlo; dec <= dhi; dec++ {
		xx := x(math.Pow(10, dec))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#eee"/>`, xx, top, xx, float64(top)+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`, xx, float64(top)+ph+14, durString(time.Duration(math.Pow(10, dec))))
	}
	for _, f := range []float64{0, 0.5, 0.9, 0.99, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`, left, y(f), float64(left)+pw, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`, left-4, y(f)+4, f)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">latency</text>`, float64(left)+pw/2, H-4)
	for i, s := range series {
		ly := top + 14 + 16*i
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%d" x2="%.0f" y2="%d" stroke="%s" stroke-width="2"/>`, float64(left)+pw+8, ly-4, float64(left)+pw+24, ly-4, s.color)
		fmt.Fprintf(&b, `<text x="%.0f" y="%d">%s (%d)</text>`, float64(left)+pw+28, ly, html.EscapeString(s.name), len(s.sorted))
		n := len(s.sorted)
		if n == 0 {
			continue
		}
		// At most ~400 points per line keeps the file small; the steps
		// of the empirical distribution are kept at the chosen points.
		step := max(n/400, 1)
		var pts strings.Builder
		for j := 0; j < n; j += step {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(s.sorted[j])), y(float64(j)/float64(n)))
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(s.sorted[j])), y(float64(min(j+step, n))/float64(n)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, s.color, pts.String())
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// computationsSVG draws one horizontal bar per design: distinct keys
// computed, then duplicates.
func (r *Report) computationsSVG() string {
	const W, left, right, rowH, top = 820, 110, 250, 26, 10
	H := top + rowH*len(r.Results) + 30
	var most int64 = 1
	for _, res := range r.Results {
		most = max(most, res.Computations)
	}
	pw := float64(W - left - right)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, W, H, W, H)
	for i, res := range r.Results {
		yy := top + rowH*i
		dw := pw * float64(res.DistinctComputed) / float64(most)
		uw := pw * float64(res.Duplicates) / float64(most)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, yy+15, html.EscapeString(res.Design))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="18" fill="%s"/>`, left, yy+2, dw, palette[i%len(palette)])
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="18" fill="%s" fill-opacity="0.35" stroke="%s"/>`, float64(left)+dw, yy+2, uw, palette[i%len(palette)], palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d = %d distinct + %d duplicates</text>`, float64(left)+dw+uw+6, yy+15, res.Computations, res.DistinctComputed, res.Duplicates)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">solid: distinct keys computed; pale: duplicate computations</text>`, left, H-8)
	b.WriteString("</svg>\n")
	return b.String()
}
