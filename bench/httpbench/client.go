package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// checkURL refuses a URL whose host is not loopback.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" || u.Port() == "" {
		return fmt.Errorf("%q: want http://127.0.0.1:PORT/...", raw)
	}
	return requireLoopback(u.Host)
}

// post sends input and returns the response's body and how the cache in
// front says it served it ("" where it says nothing).
func post(c *http.Client, url string, input []byte) ([]byte, string, error) {
	resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(input))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return body, sourceOf(resp.Header), nil
}

// sourceOf is how a response was served: the daemon's Coalesce-Source
// (hit, joined, computed) or nginx's $upstream_cache_status, which the
// script's configuration sends as X-Cache-Status (HIT, MISS, ...).
func sourceOf(h http.Header) string {
	if s := h.Get("Coalesce-Source"); s != "" {
		return s
	}
	return h.Get("X-Cache-Status")
}

// input makes a 512-byte input (the size of the user's) that starts with
// tag, so that each round asks for something no cache has seen.
func input(tag string, size int) []byte {
	b := []byte(tag + " ")
	for i := 0; len(b) < size; i++ {
		b = append(b, "abcdefghijklmnopqrstuvwxyz0123456789"[i%36])
	}
	return b[:size]
}

// runPrime waits until url answers, puts the input of body-file in its
// cache and checks that the next request for it is a hit with the right
// bytes: the throughput runs then measure hits and nothing else.
func runPrime(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("prime", flag.ContinueOnError)
	target := fs.String("url", "", "where to POST the input")
	bodyFile := fs.String("body-file", "", "the input")
	wait := fs.Duration("wait", 10*time.Second, "how long the server may take to start answering")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkURL(*target); err != nil {
		return err
	}
	in, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(*wait)
	for {
		_, _, err = post(c, *target, in)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	got, src, err := post(c, *target, in)
	switch {
	case err != nil:
		return err
	case !bytes.Equal(got, resultOf(in)):
		return fmt.Errorf("wrong result %q", got)
	case src != "" && src != "hit" && src != "HIT":
		return fmt.Errorf("the second request was served as %q, not as a hit: is the cache on?", src)
	}
	fmt.Fprintf(stdout, "primed %s: second request served as %q\n", *target, src)
	return nil
}

// runStampede fires n requests for one input nobody has asked for yet, all
// at once, each on its own warm keep-alive connection, and prints one line:
// the upstream's computations and when each request was answered, counted
// from the moment they were released.
func runStampede(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stampede", flag.ContinueOnError)
	target := fs.String("url", "", "where to POST the input (nginx, or the daemon's /v1/compute)")
	up := fs.String("upstream", "", "the upstream's base URL, for its /calls count")
	label := fs.String("label", "", "name of the target in the results")
	round := fs.Int("round", 0, "round number in the results")
	n := fs.Int("n", 50, "concurrent requests")
	size := fs.Int("size", 512, "input bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range []string{*target, *up} {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	if *n < 1 || *n > 1000 {
		return errors.New("-n: allowed 1 to 1000")
	}
	// One client per request, each with a single connection, opened and
	// warmed below: the stampede then measures the caches, not dialing.
	clients := make([]*http.Client, *n)
	for i := range clients {
		t := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
		defer t.CloseIdleConnections()
		clients[i] = &http.Client{Transport: t, Timeout: 30 * time.Second}
	}
	warm := input(fmt.Sprintf("httpbench warm-up %s", *label), *size)
	if _, _, err := post(clients[0], *target, warm); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := each(*n, func(i int) error { _, _, err := post(clients[i], *target, warm); return err }); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	in := input(fmt.Sprintf("httpbench stampede %s round %d at %d", *label, *round, time.Now().UnixNano()), *size)
	want := resultOf(in)
	before, err := calls(*up)
	if err != nil {
		return err
	}
	took := make([]time.Duration, *n)
	srcs := make([]string, *n)
	start := make(chan struct{})
	var t0 time.Time
	var ready sync.WaitGroup
	ready.Add(*n)
	done := make(chan error, *n)
	for i := range *n {
		go func() {
			ready.Done()
			<-start
			got, src, err := post(clients[i], *target, in)
			took[i] = time.Since(t0)
			srcs[i] = src
			if err == nil && !bytes.Equal(got, want) {
				err = fmt.Errorf("wrong result %q", got)
			}
			done <- err
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	for range *n {
		if e := <-done; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	after, err := calls(*up)
	if err != nil {
		return err
	}

	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	count := map[string]int{}
	for _, s := range srcs {
		if s == "" {
			s = "uncached" // the upstream alone says nothing
		}
		count[s]++
	}
	var parts []string
	for s, c := range count {
		parts = append(parts, fmt.Sprintf("%s=%d", s, c))
	}
	sort.Strings(parts)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	fmt.Fprintf(stdout, "stampede\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", *label, *round, after-before, *n,
		ms(took[0]), ms(percentile(took, 50)), ms(took[len(took)-1]), strings.Join(parts, ","))
	return nil
}

// each runs f(0..n-1) at once and returns the first error.
func each(n int, f func(i int) error) error {
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- f(i) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// runCalls prints the upstream's count of computations so far.
func runCalls(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	up := fs.String("upstream", "", "the upstream's base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkURL(*up); err != nil {
		return err
	}
	n, err := calls(*up)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, n)
	return nil
}

// calls reads the upstream's count of computations.
func calls(base string) (int64, error) {
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/calls")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// percentile is the nearest-rank percentile of sorted values.
func percentile[T any](sorted []T, p float64) T {
	i := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
