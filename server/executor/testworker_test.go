package executor

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The process tests run this test binary as their worker: TestMain calls
// runTestWorker when testWorkerEnv names a mode. The worker misbehaves on
// purpose when an input asks it to.
const (
	testWorkerEnv  = "EXECUTOR_TEST_WORKER"      // the mode, below
	testConcEnv    = "EXECUTOR_TEST_CONCURRENCY" // requests at once (default 1)
	testMarkerEnv  = "EXECUTOR_TEST_MARKER"      // a file: "crash-once" and "start-then-fail" remember a past life in it
	testStartsEnv  = "EXECUTOR_TEST_STARTS"      // a file that gets a line at every start
	testGarbageMsg = "this is not a frame\n"
)

// runTestWorker is the worker's main. Modes:
//
//	serve            a worker; inputs select behaviours (see handle)
//	exit-at-start    prints a line to stderr and exits 2 before its hello
//	no-hello         sends nothing and waits to be killed
//	bad-hello        prints text to stdout instead of a hello
//	start-then-fail  serves on its first start, fails like exit-at-start later
func runTestWorker(mode string) int {
	if f := os.Getenv(testStartsEnv); f != "" {
		appendLine(f, strconv.Itoa(os.Getpid()))
	}
	switch mode {
	case "exit-at-start":
		fmt.Fprintln(os.Stderr, "boom: missing config")
		return 2
	case "no-hello":
		time.Sleep(time.Hour)
		return 0
	case "bad-hello":
		fmt.Print("Traceback (most recent call last):\n")
		time.Sleep(time.Hour)
		return 0
	case "start-then-fail":
		if _, err := os.Stat(os.Getenv(testMarkerEnv)); err == nil {
			fmt.Fprintln(os.Stderr, "boom: broken after the first start")
			return 2
		}
		appendLine(os.Getenv(testMarkerEnv), "started")
	}
	conc, _ := strconv.Atoi(os.Getenv(testConcEnv))
	conc = max(conc, 1)
	tw := &testWorker{out: bufio.NewWriter(os.Stdout), cancels: map[uint64]context.CancelFunc{}}
	tw.send(frameHello, 0, helloPayload(uint32(conc)))
	in := bufio.NewReader(os.Stdin)
	maxFrame, _ := strconv.Atoi(os.Getenv("COALESCE_MAX_FRAME_SIZE"))
	for {
		f, err := readFrame(in, maxFrame)
		if err != nil {
			return 0 // stdin closed: the pool is gone
		}
		switch f.typ {
		case frameCancel:
			tw.mu.Lock()
			cancel := tw.cancels[f.id]
			tw.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case frameRequest:
			ctx, cancel := context.WithCancel(context.Background())
			tw.mu.Lock()
			tw.cancels[f.id] = cancel
			tw.mu.Unlock()
			if conc == 1 {
				tw.handle(ctx, f.id, string(f.payload), maxFrame)
			} else {
				go tw.handle(ctx, f.id, string(f.payload), maxFrame)
			}
		}
	}
}

type testWorker struct {
	mu      sync.Mutex // guards out and cancels
	out     *bufio.Writer
	cancels map[uint64]context.CancelFunc
}

func (tw *testWorker) send(typ byte, id uint64, payload []byte) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if typ != frameHello {
		if tw.cancels[id] == nil {
			return // answered already
		}
		tw.cancels[id]()
		delete(tw.cancels, id)
	}
	tw.out.Write(appendFrame(nil, typ, id, payload))
	tw.out.Flush()
}

func (tw *testWorker) raw(b []byte) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.out.Write(b)
	tw.out.Flush()
}

// handle answers one request. Inputs:
//
//	pid          the worker's process id
//	crash        exits 3 (after a line on stderr)
//	crash-once   exits 3 if the marker file does not exist (and creates it), else echoes
//	hang         never answers, ignores cancels
//	sleep:MS     answers after MS milliseconds, or a cancel frame when cancelled
//	fail:MSG     an error frame with MSG
//	garbage      text on stdout
//	unknown-id   a result for a request id never sent
//	oversize     a frame header declaring one byte more than the limit
//	anything     "echo:" + the input
func (tw *testWorker) handle(ctx context.Context, id uint64, in string, maxFrame int) {
	switch {
	case in == "pid":
		tw.send(frameResult, id, []byte(strconv.Itoa(os.Getpid())))
	case in == "crash":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		os.Exit(3)
	case in == "crash-once":
		if _, err := os.Stat(os.Getenv(testMarkerEnv)); err != nil {
			appendLine(os.Getenv(testMarkerEnv), "crashed")
			fmt.Fprintln(os.Stderr, "crashing once on purpose")
			os.Exit(3)
		}
		tw.send(frameResult, id, []byte("echo:"+in))
	case in == "hang":
		select {}
	case strings.HasPrefix(in, "sleep:"):
		ms, _ := strconv.Atoi(strings.TrimPrefix(in, "sleep:"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			tw.send(frameResult, id, []byte("echo:"+in))
		case <-ctx.Done():
			tw.send(frameCancel, id, nil)
		}
	case strings.HasPrefix(in, "fail:"):
		tw.send(frameError, id, []byte(strings.TrimPrefix(in, "fail:")))
	case in == "garbage":
		tw.raw([]byte(testGarbageMsg))
	case in == "unknown-id":
		tw.raw(appendFrame(nil, frameResult, id+1000, []byte("whose?")))
	case in == "oversize":
		hdr := binary.BigEndian.AppendUint32(nil, uint32(maxFrame+1))
		tw.raw(binary.BigEndian.AppendUint64(append(hdr, frameResult), id))
	default:
		tw.send(frameResult, id, []byte("echo:"+in))
	}
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test worker:", err)
		os.Exit(4)
	}
	fmt.Fprintln(f, line)
	f.Close()
}
