package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// get returns the status and body of GET url.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// computeAll posts each input and returns the results and their sources.
func computeAll(t *testing.T, d *daemon, inputs []string, header ...string) (values []string, sources map[string]int) {
	t.Helper()
	sources = map[string]int{}
	for _, in := range inputs {
		code, h, body, err := postTo(http.DefaultClient, d.url+"/v1/compute", in, header...)
		if err != nil || code != 200 {
			t.Fatalf("compute %q: %d %s %v", in, code, body, err)
		}
		values = append(values, string(body))
		sources[h.Get("Coalesce-Source")]++
	}
	return values, sources
}

// TestServeRestartKeepsResults is the restart test of issue #10: results
// computed before a clean shutdown are served after it with no new
// computation, and after a version bump no old result is served.
func TestServeRestartKeepsResults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	fast := []string{"--data-dir", dir, "--demo-min", "1ms", "--demo-max", "2ms"}
	var inputs []string
	for i := range 60 {
		inputs = append(inputs, fmt.Sprintf("input %d", i))
	}

	d := startDaemon(t, append(fast, "--version", "v1")...)
	before, src := computeAll(t, d, inputs)
	if src["computed"] != len(inputs) {
		t.Fatalf("first run: sources %v; want every input computed", src)
	}
	// One result in another namespace, which the restart keeps apart.
	_, _ = computeAll(t, d, inputs[:1], "Coalesce-Namespace", "other")
	_, h, _, err := postTo(http.DefaultClient, d.url+"/v1/compute", inputs[0])
	if err != nil {
		t.Fatal(err)
	}
	key := h.Get("Coalesce-Key")
	d.stop(t)

	d = startDaemon(t, append(fast, "--version", "v1")...)
	// A client that kept the key (an async request's) finds the result on
	// disk, without sending the input again.
	resp, err := http.Get(d.url + "/v1/results/" + key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Coalesce-Source") != "loaded" || string(body) != before[0] {
		t.Fatalf("GET /v1/results/KEY after a restart: %d, source %q, %q; want 200, loaded, %q",
			resp.StatusCode, resp.Header.Get("Coalesce-Source"), body, before[0])
	}
	after, src := computeAll(t, d, inputs)
	if src["loaded"] != len(inputs) {
		t.Fatalf("after a restart: sources %v; want every input loaded from disk", src)
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("input %d: %q before the restart, %q after", i, before[i], after[i])
		}
	}
	if c := d.stat(t, "Computed"); c != 0 {
		t.Fatalf("Computed %d after the restart; want 0", c)
	}
	// Loaded results are in memory now.
	if _, src := computeAll(t, d, inputs[:5]); src["hit"] != 5 {
		t.Fatalf("second request after the restart: sources %v; want hits", src)
	}
	d.stop(t)

	d = startDaemon(t, append(fast, "--version", "v2")...)
	_, src = computeAll(t, d, inputs)
	if src["computed"] != len(inputs) || d.stat(t, "Loaded") != 0 {
		t.Fatalf("after a version bump: sources %v, Loaded %d; want every input computed, none loaded", src, d.stat(t, "Loaded"))
	}
	// A request may still name the old version.
	if _, src := computeAll(t, d, inputs[:3], "Coalesce-Version", "v1"); src["loaded"] != 3 {
		t.Fatalf("naming the old version: sources %v; want loaded", src)
	}
	d.stop(t)

	// Offline, the store lists both versions and verifies clean.
	var out, errOut bytes.Buffer
	if code := run([]string{"store", "verify", dir}, &out, &errOut); code != 0 {
		t.Fatalf("store verify: exit %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "total") {
		t.Fatalf("store verify printed %q", out.String())
	}
	out.Reset()
	if code := run([]string{"store", "delete", "-namespace", "_", "-except-version", "v2", dir}, &out, &errOut); code != 0 {
		t.Fatalf("store delete: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("deleted %d results", len(inputs))) {
		t.Fatalf("store delete of v1: %q; want %d deleted", out.String(), len(inputs))
	}
}

// TestServeDiskFull: with the disk tier's file system full, the daemon
// serves from memory and computes, reports the failure in /readyz and
// /metrics, and recovers when space returns, losing nothing from memory.
func TestServeDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	d := startDaemon(t, "--data-dir", filepath.Join(mnt, "data"), "--demo-min", "1ms", "--demo-max", "2ms")
	if _, src := computeAll(t, d, []string{"a", "b"}); src["computed"] != 2 {
		t.Fatalf("sources %v", src)
	}
	// Fill the file system to below the store's reserve (64 MiB), leaving
	// the engine room of its own.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &fs); err != nil {
		t.Fatal(err)
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, free-(8<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	var full []string
	for i := range 20 {
		full = append(full, fmt.Sprintf("while full %d", i))
	}
	if _, src := computeAll(t, d, full); src["computed"] != len(full) {
		t.Fatalf("while the disk is full: sources %v; want every input computed", src)
	}
	until(t, "/readyz reports the disk", func() bool {
		code, body := getBody(t, d.url+"/readyz")
		return code == 200 && strings.Contains(body, "degraded") && strings.Contains(body, "disk:")
	})
	if _, body := getBody(t, d.url+"/metrics"); !strings.Contains(body, "coalesce_disk_healthy 0") || !strings.Contains(body, `coalesce_check_ok{check="disk"} 0`) {
		t.Fatal("/metrics does not report the failing disk")
	}
	if !strings.Contains(d.stderr.String(), "disk") {
		t.Fatal("the log says nothing of the disk")
	}
	// Nothing is lost from memory.
	if _, src := computeAll(t, d, full); src["hit"] != len(full) {
		t.Fatalf("results computed while full: sources %v; want hits from memory", src)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	i := 0
	until(t, "the disk tier recovers", func() bool {
		i++
		computeAll(t, d, []string{fmt.Sprintf("after %d", i)})
		_, body := getBody(t, d.url+"/metrics")
		return strings.Contains(body, "coalesce_disk_healthy 1")
	})
	if code, body := getBody(t, d.url+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz after recovery: %d %q", code, body)
	}
}
