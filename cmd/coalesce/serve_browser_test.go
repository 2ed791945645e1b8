package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The status page's acceptance test runs it in a real headless Chromium
// against the daemon under load. Without Chromium it is skipped, unless
// COALESCE_BROWSER_TEST is set (scripts/test sets it after running
// scripts/install-chromium): then a missing browser fails the test.
// COALESCE_STATUS_SCREENSHOT=FILE.png also saves a screenshot of the page.
const browserPath = "/usr/bin/chromium"

// TestServeStatusPageInBrowser starts the daemon, keeps 8 clients sending
// a mix of inputs, and dumps the page's DOM twice after Chromium has run
// its script: the request count must grow from one load to the next, hits
// must be counted, the page must have polled more than once, and the
// browser's console must stay silent (no script error, nothing refused by
// the page's Content-Security-Policy).
func TestServeStatusPageInBrowser(t *testing.T) {
	if _, err := os.Stat(browserPath); err != nil {
		if os.Getenv("COALESCE_BROWSER_TEST") != "" {
			t.Fatalf("COALESCE_BROWSER_TEST is set but %s is missing (%v): run scripts/install-chromium", browserPath, err)
		}
		t.Skipf("%s is missing: run scripts/install-chromium to test the status page in a browser (with COALESCE_BROWSER_TEST=1 set, this fails instead of skipping)", browserPath)
	}
	d := startDaemon(t)

	ctx, stopLoad := context.WithTimeout(context.Background(), 40*time.Second)
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer func() {
		stopLoad()
		wg.Wait()
		tr.CloseIdleConnections()
	}()
	for c := range 8 {
		wg.Go(func() {
			// 40 distinct inputs, revisited: mostly hits, some joins.
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				in := fmt.Sprintf("input-%d", (i*7+c*13)%40)
				status, _, _, err := postTo(client, d.url+"/v1/compute", in)
				if err == nil && status != 200 {
					t.Errorf("load: POST %q: status %d", in, status)
					return
				}
				// A steady load, not a flood: the browser needs the cores too.
				time.Sleep(time.Millisecond)
			}
		})
	}
	until(t, "the daemon answers hits", func() bool { return d.stat(t, "Hits") > 0 })

	first := loadStatusPage(t, d.url)
	until(t, "the request count grows past the page's", func() bool { return d.stat(t, "Requests") > int(first["requests"]) })
	second := loadStatusPage(t, d.url)
	t.Logf("first load: %v\nsecond load: %v", first, second)

	if second["requests"] <= first["requests"] {
		t.Errorf("requests on the page did not grow: %v then %v", first["requests"], second["requests"])
	}
	if second["hits"] <= 0 {
		t.Errorf("hits on the page: %v, want some", second["hits"])
	}
	if second["updates"] < 2 {
		t.Errorf("the page polled %v times within its budget, want 2 or more", second["updates"])
	}
	for _, id := range []string{"rate-total", "rate-hit", "queued", "in-flight", "waiters", "cache-fill", "entries"} {
		if _, ok := second[id]; !ok {
			t.Errorf("the page shows no number for #%s", id)
		}
	}
	if second["entries"] <= 0 || second["cache-fill"] <= 0 {
		t.Errorf("the page shows an empty cache under load: entries %v, fill %v", second["entries"], second["cache-fill"])
	}

	if shot := os.Getenv("COALESCE_STATUS_SCREENSHOT"); shot != "" {
		runChromium(t, "--window-size=1280,900", "--screenshot="+shot, d.url+"/")
		t.Logf("screenshot of the status page: %s", shot)
	}
}

// statusValue matches the numbers the page writes: each shown value keeps
// its raw number in data-value.
var statusValue = regexp.MustCompile(`id="([a-z-]+)" data-value="([^"]*)"`)

// loadStatusPage loads the page in Chromium, lets its script run for 3 s of
// the browser's virtual time, and returns the page's numbers by element id.
func loadStatusPage(t *testing.T, url string) map[string]float64 {
	t.Helper()
	dom := runChromium(t, "--dump-dom", url+"/")
	if !strings.Contains(dom, `id="conn" class="ok"`) {
		t.Errorf("the page is not live after loading; its status line: %s", regexp.MustCompile(`<span id="conn"[^<]*</span>`).FindString(dom))
	}
	vals := map[string]float64{}
	for _, m := range statusValue.FindAllStringSubmatch(dom, -1) {
		if m[2] == "" {
			continue // no value yet: shown as a dash
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Errorf("#%s: data-value %q is not a number", m[1], m[2])
			continue
		}
		vals[m[1]] = v
	}
	if len(vals) == 0 {
		t.Fatalf("no numbers on the page; the DOM:\n%s", dom)
	}
	return vals
}

// runChromium runs headless Chromium with a fresh profile and returns its
// standard output. It fails the test on any message of the page's console,
// and kills the browser's whole process group when it is done, so that no
// helper process outlives the test.
func runChromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=3000"}, args...)
	cmd := exec.CommandContext(ctx, browserPath, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left over, if any
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium did not finish within 45 s:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			t.Errorf("the page's console: %s", line)
		}
	}
	return stdout.String()
}
