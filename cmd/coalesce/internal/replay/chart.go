package replay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// ChartFile returns the PNG file name WriteCharts uses for a workload:
// characters that are awkward in file names (the colons of synthetic specs,
// path separators) become '-'.
func ChartFile(trace string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, trace) + ".png"
}

// WriteCharts writes one PNG per workload into dir, creating it if needed:
// hit ratio against cache size (log scale), one line per policy. It returns
// the files written.
func WriteCharts(dir string, results []Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chart directory: %w", err)
	}
	rs, policies := rows(results)
	var files []string
	for start := 0; start < len(rs); {
		end := start
		for end < len(rs) && rs[end].trace == rs[start].trace {
			end++
		}
		path := filepath.Join(dir, ChartFile(rs[start].trace))
		if err := writeChart(path, rs[start:end], policies); err != nil {
			return files, fmt.Errorf("chart of %s: %w", rs[start].trace, err)
		}
		files = append(files, path)
		start = end
	}
	return files, nil
}

func writeChart(path string, rs []row, policies []string) error {
	p := plot.New()
	p.Title.Text = rs[0].trace
	p.X.Label.Text = "cache size (entries)"
	p.Y.Label.Text = "hit ratio (%)"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	// Sizes span 1% to 50% of the keys; a log axis spaces them evenly. A
	// single size would give the log axis an empty range.
	if rs[0].size != rs[len(rs)-1].size {
		p.X.Scale = plot.LogScale{}
	}
	// A tick at each measured size: log ticks alone label only powers of 10,
	// often just one within the range.
	var ticks plot.ConstantTicks
	for _, r := range rs {
		ticks = append(ticks, plot.Tick{Value: float64(r.size), Label: fmt.Sprint(r.size)})
	}
	p.X.Tick.Marker = ticks
	for i, pol := range policies {
		var xys plotter.XYs
		for _, r := range rs {
			if v, ok := r.ratio[pol]; ok {
				xys = append(xys, plotter.XY{X: float64(r.size), Y: 100 * v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(columnNames[pol], line, points)
	}
	p.Y.Min = 0
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
