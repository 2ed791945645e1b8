package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSimOddValues drives the command as main does with an odd value of
// every flag: each must fail before running, with one line that names the
// flag and says what is allowed, or be one of the documented accepted
// values, which then run (briefly: the base arguments keep runs tiny).
func TestSimOddValues(t *testing.T) {
	base := []string{"sim", "--designs", "coalesce", "--report", "", "--no-progress", "--json",
		"--duration", "50ms", "--keys", "20", "--task-min", "1ms", "--task-max", "2ms"}
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string // "" for a value that is accepted and runs
	}{
		{[]string{"--agents", "0"}, "--agents 0: allowed 1 to 65536"},
		{[]string{"--agents", "-1"}, "--agents -1: allowed 1 to 65536"},
		{[]string{"--agents", "100000000"}, "--agents 100000000: allowed 1 to 65536"},
		{[]string{"--agents", "51"}, "--agents 51 with --in-flight 50: each agent needs a slot"},
		{[]string{"--in-flight", "0"}, "--in-flight 0: allowed 1 to 65536"},
		{[]string{"--in-flight", "100000000"}, "--in-flight 100000000: allowed 1 to 65536"},
		{[]string{"--rate", "-1"}, "--rate -1: a finite number"},
		{[]string{"--rate", "NaN"}, "--rate NaN: a finite number"},
		{[]string{"--rate", "Inf"}, "--rate +Inf: a finite number"},
		{[]string{"--rate", "1e-9"}, "makes 5e-11 requests; at least 1 is needed"},
		{[]string{"--rate", "1e12"}, "at most 20000000 are allowed"},
		{[]string{"--rate", "0"}, ""}, // Little's law, documented
		{[]string{"--duration", "0"}, "--duration 0s: allowed above 0 and at most 1h0m0s"},
		{[]string{"--duration", "-1s"}, "--duration -1s: allowed above 0"},
		{[]string{"--duration", "1ns"}, "--duration 1ns at --rate"},
		{[]string{"--duration", "1000h"}, "--duration 1000h0m0s: allowed above 0 and at most 1h0m0s"},
		{[]string{"--workers", "-1"}, "--workers -1: allowed 1 to 65536 (coalesce.LimitWorkers), or 0 for GOMAXPROCS"},
		{[]string{"--workers", "100000000"}, "--workers 100000000: allowed 1 to 65536"},
		{[]string{"--workers", "abc"}, `invalid value "abc" for flag -workers`},
		{[]string{"--workers", "0"}, ""}, // GOMAXPROCS, documented
		{[]string{"--keys", "0"}, "--keys 0: allowed 1 to 1073741824"},
		{[]string{"--keys", "100000000000"}, "--keys 100000000000: allowed 1 to 1073741824"},
		{[]string{"--zipf", "1"}, "--zipf 1: allowed above 1 and at most 100"},
		{[]string{"--zipf", "0"}, "--zipf 0: allowed above 1"},
		{[]string{"--zipf", "NaN"}, "--zipf NaN: allowed above 1"},
		{[]string{"--zipf", "Inf"}, "--zipf +Inf: allowed above 1 and at most 100"},
		{[]string{"--task", "gpu"}, `--task "gpu": use "sleep" or "cpu"`},
		{[]string{"--task", ""}, `--task "": use "sleep" or "cpu"`},
		{[]string{"--task-dist", "pareto"}, `task distribution "pareto" is unknown; use uniform, fixed, normal or exp`},
		{[]string{"--task-dist", ""}, `task distribution "" is unknown`},
		{[]string{"--task-min", "-1ms"}, "--task-min -1ms: at least 0"},
		{[]string{"--task-min", "1h"}, "--task-max 2ms: at least --task-min (1h0m0s)"},
		{[]string{"--task-min", "0"}, ""}, // tasks of no time at all for some keys
		{[]string{"--task-max", "0"}, "--task-max 0s: allowed above 0 and at most 1m0s"},
		{[]string{"--task-max", "1000h"}, "--task-max 1000h0m0s: allowed above 0 and at most 1m0s"},
		{[]string{"--input-min", "0"}, "--input-min 0: allowed 16 (the simulator's header) to 1073741824 bytes"},
		{[]string{"--input-min", "100000000000"}, "--input-min 100000000000: allowed 16"},
		{[]string{"--input-max", "0"}, "--input-max 0: allowed --input-min (256) to 1073741824 bytes"},
		{[]string{"--input-max", "100000000000"}, "--input-max 100000000000: allowed --input-min (256) to 1073741824 bytes (coalesce.LimitInputSize)"},
		{[]string{"--input-max", "1000000000"}, "--keys 20, --input-max 1000000000, --output 128: the inputs and results held in memory would take about 18.6 GiB; the simulator allows 2 GiB"},
		{[]string{"--output", "0"}, "--output 0: allowed 1 to 1073741824 bytes"},
		{[]string{"--output", "100000000000"}, "--output 100000000000: allowed 1 to 1073741824 bytes (coalesce.LimitResultSize)"},
		{[]string{"--output", "1000000000"}, "the simulator allows 2 GiB: lower one of them"},
		{[]string{"--output", "1000000", "--cache-mib", "1"}, "--output 1000000 with --cache-mib 1: design coalesce rejects them"},
		{[]string{"--cache-mib", "0"}, "--cache-mib 0: allowed 1 to 65536"},
		{[]string{"--cache-mib", "-1"}, "--cache-mib -1: allowed 1 to 65536"},
		{[]string{"--cache-mib", "100000000000"}, "--cache-mib 100000000000: allowed 1 to 65536 (64 GiB; the library accepts up to 1 TiB"},
		{[]string{"--seed", "0"}, "--seed 0: use any other value"},
		{[]string{"--seed", "-1"}, `invalid value "-1" for flag -seed`},
		{[]string{"--designs", ""}, `--designs "": no designs given`},
		{[]string{"--designs", "nope"}, `--designs: unknown design "nope"`},
		{[]string{"--designs", "coalesce,coalesce"}, `--designs: "coalesce" is listed twice`},
		{[]string{"--trace", filepath.Join(dir, "missing.gz")}, "--trace: open " + filepath.Join(dir, "missing.gz")},
		{[]string{"--report", "/nonexistent/dir/x.html"}, "--report /nonexistent/dir/x.html: cannot write in /nonexistent/dir"},
		{[]string{"--report", dir}, "--report " + dir + ": is a directory"},
		{[]string{"--quick=maybe"}, `invalid boolean value "maybe" for -quick`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append(slices.Clone(base), tt.args...), &stdout, &stderr)
			if tt.want == "" {
				if code != 0 {
					t.Fatalf("exit %d; want 0 for an accepted value\n%s", code, stderr.String())
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "coalesce sim: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("exit %d, stderr %q; want a non-zero exit and one line mentioning %q", code, stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q; want nothing: the run must not start", stdout.String())
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}

func TestSimFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--task", "gpu"}, `--task "gpu"`},
		{[]string{"--designs", "user,nope"}, `unknown design "nope"`},
		{[]string{"--designs", ","}, "no designs given"},
		{[]string{"--zipf", "1"}, "--zipf 1"},
		{[]string{"--duration", "-1s"}, "duration"},
		{[]string{"--trace", filepath.Join(t.TempDir(), "missing.gz")}, "missing.gz"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, "not defined"},
	} {
		var stdout, stderr bytes.Buffer
		err := runSim(tt.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("sim %v: error %v; want one mentioning %q", tt.args, err, tt.want)
		}
	}
}

// TestSimJSONAndReport runs two designs for a moment from the command line
// and checks the JSON shape and the report file, not the figures.
func TestSimJSONAndReport(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.html")
	var stdout, stderr bytes.Buffer
	err := runSim([]string{"--duration", "200ms", "--keys", "20", "--task-min", "1ms", "--task-max", "2ms",
		"--designs", "user,coalesce", "--json", "--report", report}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("sim: %v\n%s", err, stderr.String())
	}
	var out struct {
		Designs []struct {
			Design   string `json:"design"`
			Requests int    `json:"requests"`
		} `json:"designs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("the JSON output does not parse: %v\n%s", err, stdout.String())
	}
	if len(out.Designs) != 2 || out.Designs[0].Design != "user" || out.Designs[1].Design != "coalesce" {
		t.Errorf("designs in the JSON: %+v; want user then coalesce", out.Designs)
	}
	html, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("<svg")) {
		t.Errorf("the report has no chart")
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not empty with --json: %q", stderr.String())
	}
}
