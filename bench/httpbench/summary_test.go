package main

import (
	"strings"
	"testing"
)

func TestStatOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want stat
	}{
		{[]float64{3, 1, 2}, stat{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, stat{2.5, 1, 4}},
		{[]float64{7}, stat{7, 7, 7}},
	} {
		if got := statOf(c.in); got != c.want {
			t.Errorf("statOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]int, 50)
	for i := range xs {
		xs[i] = i + 1
	}
	for p, want := range map[float64]int{50: 25, 99: 50, 100: 50, 1: 1} {
		if got := percentile(xs, p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
}

// TestSummary checks that ratios pair the rounds: coalesce is 2x nginx in
// each round although both vary across rounds.
func TestSummary(t *testing.T) {
	in := strings.Join([]string{
		"stampede\tnginx\t1\t1\t50\t20.5\t510.0\t512.0\tHIT=49,MISS=1",
		"stampede\tcoalesce\t1\t1\t50\t20.4\t21.0\t22.0\tcomputed=1,joined=49",
		"hit\tnginx\t1\t1000\t500\t900\t10000\t0\t2\t10\t100",
		"hit\tcoalesce\t1\t2000\t400\t800\t20000\t0\t2\t10\t100",
		"hit\tnginx\t2\t3000\t500\t900\t30000\t0\t2\t10\t100",
		"hit\tcoalesce\t2\t6000\t400\t800\t60000\t0\t2\t10\t100",
		"a line that is not a result",
	}, "\n")
	rows, err := readRows(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	summarize(rows, &out)
	for _, want := range []string{"coalesce  4000 (2000-6000)  2.00x", "0.50x", "0.043x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestResultOfIsDeterministic(t *testing.T) {
	a, b := resultOf([]byte("x")), resultOf([]byte("x"))
	if string(a) != string(b) || len(a) != 128 || string(resultOf([]byte("y"))) == string(a) {
		t.Fatalf("resultOf: %q %q", a, b)
	}
}
