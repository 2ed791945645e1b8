// Command worker-go is a coalesce worker in Go: the daemon starts it once
// and sends it requests over stdin and stdout, as docs/WORKER-PROTOCOL.md
// describes. It takes several requests at once and answers each as soon as
// it is done, in any order. Run it with
//
//	go build -o worker ./examples/worker-go
//	coalesce serve --exec ./worker
//
// To use your own function, replace compute: it must be deterministic (the
// daemon caches its results), and should stop when ctx is cancelled.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// compute is the function the daemon serves: sha256 of the input, in hex,
// as the Python example computes.
func compute(ctx context.Context, input []byte) ([]byte, error) {
	if len(input) == 0 {
		return nil, errors.New("empty input: send at least one byte")
	}
	sum := sha256.Sum256(input)
	return []byte(hex.EncodeToString(sum[:])), nil
}

// Frame types; every frame is a 13-byte header (payload length uint32,
// type uint8, request id uint64, big-endian) and the payload.
const (
	hello   = 1
	request = 2
	result  = 3
	failure = 4
	cancel  = 5
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("worker-go: ") // logs go to stderr; stdout carries frames only
	maxFrame, err := strconv.Atoi(os.Getenv("COALESCE_MAX_FRAME_SIZE"))
	if err != nil {
		maxFrame = 4 << 20
	}
	w := &worker{out: bufio.NewWriter(os.Stdout), cancels: map[uint64]context.CancelFunc{}}
	// Version 1; as many requests at once as there are CPUs.
	w.send(hello, 0, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 1), uint32(runtime.GOMAXPROCS(0))))

	in := bufio.NewReader(os.Stdin)
	var hdr [13]byte
	for {
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return // stdin closed: the daemon is gone or shutting down
		}
		n, typ, id := binary.BigEndian.Uint32(hdr[0:4]), hdr[4], binary.BigEndian.Uint64(hdr[5:13])
		if uint64(n) > uint64(maxFrame) {
			log.Fatalf("frame of %d bytes declared, over %d", n, maxFrame)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(in, payload); err != nil {
			return
		}
		switch typ {
		case request:
			ctx, stop := context.WithCancel(context.Background())
			w.mu.Lock()
			w.cancels[id] = stop
			w.mu.Unlock()
			go w.serve(ctx, id, payload)
		case cancel:
			w.mu.Lock()
			if stop := w.cancels[id]; stop != nil {
				stop()
			}
			w.mu.Unlock()
		}
	}
}

type worker struct {
	mu      sync.Mutex // one frame at a time on stdout
	out     *bufio.Writer
	cancels map[uint64]context.CancelFunc // requests in progress
}

// serve computes one request and answers it: its result, its error, or a
// cancel frame when the daemon cancelled it meanwhile.
func (w *worker) serve(ctx context.Context, id uint64, input []byte) {
	val, err := compute(ctx, input)
	switch {
	case ctx.Err() != nil:
		w.send(cancel, id, nil)
	case err != nil:
		w.send(failure, id, []byte(err.Error()))
	default:
		w.send(result, id, val)
	}
}

func (w *worker) send(typ byte, id uint64, payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if stop := w.cancels[id]; stop != nil {
		stop()
		delete(w.cancels, id)
	}
	var hdr [13]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	hdr[4] = typ
	binary.BigEndian.PutUint64(hdr[5:13], id)
	w.out.Write(hdr[:])
	w.out.Write(payload)
	if err := w.out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "worker-go: stdout:", err)
		os.Exit(1)
	}
}
