package executor

import (
	"context"
	"crypto/sha3"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

const (
	// DemoResultSize is the length of every Demo result.
	DemoResultSize = 128
	// LimitDemoDelay bounds DemoOptions.Max.
	LimitDemoDelay = time.Hour

	defaultDemoMin = 15 * time.Millisecond
	defaultDemoMax = 30 * time.Millisecond
)

// DemoOptions configures a Demo. The zero value is 15-30 ms.
type DemoOptions struct {
	// Min and Max bound the delay before a result. Both zero mean 15 ms to
	// 30 ms; Max zero with Min set means exactly Min.
	Min, Max time.Duration
}

// Demo is a stand-in computation, the daemon's default executor: its result
// for an input is the first DemoResultSize bytes of SHAKE256 over it,
// delivered after a delay in [Min, Max] that is chosen from the input too,
// so a run can be replayed exactly.
//
// It is safe for concurrent use. Compute returns ctx.Err() when ctx ends
// first, and ErrClosed once Close was called.
type Demo struct {
	min, span time.Duration
	done      chan struct{}
	once      sync.Once
}

// NewDemo checks opts and returns a Demo.
func NewDemo(opts DemoOptions) (*Demo, error) {
	if opts.Min == 0 && opts.Max == 0 {
		opts.Min, opts.Max = defaultDemoMin, defaultDemoMax
	}
	if opts.Max == 0 {
		opts.Max = opts.Min
	}
	if opts.Min < 0 || opts.Max < opts.Min || opts.Max > LimitDemoDelay {
		return nil, fmt.Errorf("executor: DemoOptions{Min: %v, Max: %v}: they must satisfy 0 <= Min <= Max <= %v, or both be zero for 15-30 ms", opts.Min, opts.Max, LimitDemoDelay)
	}
	return &Demo{min: opts.Min, span: opts.Max - opts.Min, done: make(chan struct{})}, nil
}

// Compute returns the input's result after its delay.
func (d *Demo) Compute(ctx context.Context, input []byte) ([]byte, error) {
	select {
	case <-d.done:
		return nil, ErrClosed
	default:
	}
	h := sha3.SumSHAKE256(input, DemoResultSize+8)
	t := time.NewTimer(d.delay(h))
	defer t.Stop()
	select {
	case <-t.C:
		return h[:DemoResultSize:DemoResultSize], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, ErrClosed
	}
}

// Delay returns how long Compute takes for input.
func (d *Demo) Delay(input []byte) time.Duration {
	return d.delay(sha3.SumSHAKE256(input, DemoResultSize+8))
}

// delay picks the delay from the 8 bytes of the hash past the result, so it
// is independent of the result's bytes.
func (d *Demo) delay(h []byte) time.Duration {
	return d.min + time.Duration(binary.BigEndian.Uint64(h[DemoResultSize:])%uint64(d.span+1))
}

// Close makes calls in flight and later calls return ErrClosed.
func (d *Demo) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
