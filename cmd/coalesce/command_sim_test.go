package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--task", "gpu"}, `task is "gpu"`},
		{[]string{"--designs", "user,nope"}, `unknown design "nope"`},
		{[]string{"--designs", ","}, "no designs given"},
		{[]string{"--zipf", "1"}, "zipf exponent"},
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
