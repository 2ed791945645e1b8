package server

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/coalesce-go/coalesce"
)

func TestStatusPage(t *testing.T) {
	ts, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{})
	resp, page := get(t, ts.URL+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /: Content-Type %q, want text/html; charset=utf-8", ct)
	}
	if !strings.HasPrefix(page, "<!doctype html>") || !strings.Contains(page, "</html>") {
		t.Errorf("GET /: not a whole HTML page")
	}
	// The page is self-contained: no script, style, font or image from
	// elsewhere, and the Content-Security-Policy forbids them anyway.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)https?://`),
		regexp.MustCompile(`(?i)["'(]//`), // scheme-relative
		regexp.MustCompile(`(?i)<script[^>]*\bsrc\s*=`),
		regexp.MustCompile(`(?i)<link\b`),
		regexp.MustCompile(`(?i)@import|url\(`),
	} {
		if m := re.FindString(page); m != "" {
			t.Errorf("GET /: the page refers to something outside it: %q", m)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	// What the page reads exists.
	for _, path := range []string{"/v1/stats", "/v1/status"} {
		if !strings.Contains(page, `"`+path+`"`) {
			t.Errorf("the page does not poll %s", path)
		}
	}
	// Only / is the page: other unknown paths stay 404.
	if resp, _ := get(t, ts.URL+"/nothing-here"); resp.StatusCode != 404 {
		t.Errorf("GET /nothing-here: %d, want 404", resp.StatusCode)
	}
}

func TestStatusJSON(t *testing.T) {
	ts, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{})
	for range 3 {
		post(t, ts.URL+"/v1/compute", "abc")
	}
	resp, body := get(t, ts.URL+"/v1/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/status: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var st serverStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("GET /v1/status: %v in %s", err, body)
	}
	for src, want := range map[string]uint64{"hit": 2, "computed": 1, "joined": 0, "error": 0} {
		l, ok := st.Latency[src]
		if !ok || l.Count != want {
			t.Errorf("Latency[%q] = %+v (present %v), want Count %d", src, l, ok, want)
		}
		if want > 0 && (l.P50 <= 0 || l.P50 > l.Max) {
			t.Errorf("Latency[%q] = %+v: P50 must be above zero and at most Max", src, l)
		}
	}
}

func TestStatusReportsTiersAndChecks(t *testing.T) {
	type diskStats struct{ Entries, Writes int }
	ts, _ := newTestServer(t, &testFunc{}, coalesce.Options{}, Config{
		Tiers:  map[string]func() any{"disk": func() any { return diskStats{Entries: 3, Writes: 5} }},
		Checks: map[string]func() error{"disk": func() error { return errors.New("no space left on device") }},
	})
	resp, body := get(t, ts.URL+"/v1/status")
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/status: %d %s", resp.StatusCode, body)
	}
	var st struct {
		Tiers  map[string]diskStats
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Tiers["disk"] != (diskStats{Entries: 3, Writes: 5}) || st.Checks["disk"] != "no space left on device" {
		t.Fatalf("/v1/status tiers %+v checks %+v", st.Tiers, st.Checks)
	}
}
