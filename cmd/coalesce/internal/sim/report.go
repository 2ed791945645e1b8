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
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;white-space:pre-wrap;font-size:13px}
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

	b.WriteString("<h2>Latency distributions</h2>\n<p>Share of requests answered within a latency; further left is faster. Both axes are logarithmic: the latency in decades, the share in nines (0.9, 0.99, 0.999) so that the tail where the designs differ is not squeezed against the top; a line ends at 0.999 or at its slowest request.</p>\n<div class=\"charts\">\n")
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
// log-scaled latency axis spanning whole decades, against a share axis in
// nines.
func cdfSVG(title string, series []cdfSeries) string {
	const pw, ph, left, top, bottom = 360, 236, 50, 28, 36
	// The legend's width follows its longest label, so that no label is
	// cut off at the edge of the image (~7 px per character at 11 px).
	longest := 0
	for _, s := range series {
		longest = max(longest, len(legendLabel(s)))
	}
	right := 36 + 7*longest
	W, H := left+pw+right, top+ph+bottom
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
	if math.IsInf(lo, 1) {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no requests of this kind</text></svg>`, left, top+40)
		return b.String()
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	x := func(d float64) float64 { return left + (math.Log10(math.Max(d, 1))-dlo)/(dhi-dlo)*pw }
	y := func(f float64) float64 { return top + (1-nines(f)/maxNines)*ph }
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, left, top, pw, ph)
	for dec := dlo; dec <= dhi; dec++ {
		xx := x(math.Pow(10, dec))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`, xx, top, xx, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, xx, top+ph+14, durString(time.Duration(math.Pow(10, dec))))
	}
	for _, f := range []float64{0, 0.5, 0.9, 0.99, 0.999} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`, left, y(f), left+pw, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`, left-4, y(f)+4, f)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">latency</text>`, left+pw/2, H-4)
	for i, s := range series {
		ly := top + 14 + 16*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, left+pw+8, ly-4, left+pw+24, ly-4, s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, left+pw+28, ly, html.EscapeString(legendLabel(s)))
		n := len(s.sorted)
		if n == 0 {
			continue
		}
		// At most ~400 points per line keeps the file small; the steps
		// of the empirical distribution are kept at the chosen points.
		// The tail gets every point: on the nines axis the last 1% is a
		// third of the height.
		var pts strings.Builder
		step := max(n/400, 1)
		for j := 0; j < n; {
			if j >= n-n/100 {
				step = 1
			}
			next := min(j+step, n)
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(s.sorted[j])), y(float64(j)/float64(n)))
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(s.sorted[j])), y(float64(next)/float64(n)))
			j = next
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, s.color, pts.String())
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// maxNines is the top of the share axis: 0.999.
const maxNines = 3

// nines maps a share f to its number of nines, -log10(1-f), clamped to the
// axis: 0.9 is 1, 0.99 is 2, 1 is drawn at the top.
func nines(f float64) float64 {
	if f >= 1 {
		return maxNines
	}
	return math.Min(-math.Log10(1-f), maxNines)
}

func legendLabel(s cdfSeries) string { return fmt.Sprintf("%s (%d)", s.name, len(s.sorted)) }

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
