package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// resultOf is what the upstream answers for an input: 128 bytes, the hex
// SHA-256 of the input twice, so that a client can check every answer.
func resultOf(input []byte) []byte {
	sum := sha256.Sum256(input)
	h := hex.EncodeToString(sum[:])
	return []byte(h + h)
}

// upstream is the service both caches sit in front of: every POST, on any
// path, is answered after delay with resultOf its body, and counted.
// GET /calls answers the count so far, which the stampede reads before and
// after its requests.
type upstream struct {
	delay time.Duration
	calls atomic.Int64
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/calls" {
		fmt.Fprintln(w, u.calls.Load())
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST the input", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.calls.Add(1)
	time.Sleep(u.delay)
	out := resultOf(body)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

func runUpstream(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	ready := fs.String("ready-file", "", "write the URL here once listening")
	delay := fs.Duration("delay", 20*time.Millisecond, "time each computation takes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(*addr, *ready, &upstream{delay: *delay})
}

// mapServer is the reference: Go's net/http answering from a map, with
// nothing else on the path (no hashing beyond the map's, no headers, no
// limits). A miss computes resultOf at once and keeps it.
type mapServer struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (s *mapServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.RLock()
	v, ok := s.m[string(body)]
	s.mu.RUnlock()
	if !ok {
		v = resultOf(body)
		s.mu.Lock()
		s.m[string(body)] = v
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(v)))
	w.Write(v)
}

func runMapServer(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mapserver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	ready := fs.String("ready-file", "", "write the URL here once listening")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(*addr, *ready, &mapServer{m: map[string][]byte{}})
}

// serve listens on a loopback address, writes the URL to readyFile and
// serves h until SIGINT or SIGTERM.
func serve(addr, readyFile string, h http.Handler) error {
	if err := requireLoopback(addr); err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + l.Addr().String()
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte(url+"\n"), 0o644); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// requireLoopback refuses any address but a loopback one: this tool sends
// load, and load goes to this machine only.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address; this tool only talks to 127.0.0.0/8 or [::1]", addr)
	}
	return nil
}

// runFreePort prints a loopback port that was free a moment ago, for nginx,
// which needs a port number in its configuration.
func runFreePort(args []string, stdout io.Writer) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintln(stdout, l.Addr().(*net.TCPAddr).Port)
	return nil
}
