package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	d, err := NewDemo(DemoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, err := d.Compute(context.Background(), []byte("input"))
	if err != nil || len(a) != DemoResultSize {
		t.Fatalf("Compute = %d bytes, %v; want %d bytes", len(a), err, DemoResultSize)
	}
	b, _ := d.Compute(context.Background(), []byte("input"))
	c, _ := d.Compute(context.Background(), []byte("other"))
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("results are not a function of the input")
	}
	seen := map[time.Duration]bool{}
	for i := range 200 {
		delay := d.Delay(fmt.Append(nil, i))
		if delay < 15*time.Millisecond || delay > 30*time.Millisecond {
			t.Fatalf("delay %v outside the default 15-30 ms", delay)
		}
		seen[delay] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct delays over 200 inputs", len(seen))
	}
}

func TestDemoOptions(t *testing.T) {
	d, err := NewDemo(DemoOptions{Min: time.Millisecond})
	if err != nil || d.Delay([]byte("x")) != time.Millisecond {
		t.Errorf("Max zero with Min set: %v; want a fixed delay of Min", err)
	}
	for _, o := range []DemoOptions{{Min: -1}, {Min: 2, Max: 1}, {Max: 2 * LimitDemoDelay}} {
		if _, err := NewDemo(o); err == nil {
			t.Errorf("NewDemo(%+v) succeeded", o)
		}
	}
}

func TestDemoHonoursContextAndClose(t *testing.T) {
	d, err := NewDemo(DemoOptions{Min: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := d.Compute(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v; want context.DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { _, err := d.Compute(context.Background(), []byte("x")); done <- err }()
	d.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("a call in flight at Close: %v; want ErrClosed", err)
	}
	if _, err := d.Compute(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v; want ErrClosed", err)
	}
}
