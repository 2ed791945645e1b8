//go:build unix

package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// processGone reports whether no process has the id pid (a zombie counts as
// present: the pool must reap what it starts).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// compute is Compute with a bound that only guards the test against a hang.
func compute(t *testing.T, p *Process, input string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Compute(ctx, []byte(input))
}

func mustCompute(t *testing.T, p *Process, input string) string {
	t.Helper()
	out, err := compute(t, p, input)
	if err != nil {
		t.Fatalf("Compute(%q): %v", input, err)
	}
	return string(out)
}

func TestProcessResultsUnderConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name        string
		workers     int
		concurrency string
	}{
		{"one at a time", 2, "1"},
		{"multiplexed, out of order", 2, "8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := testPool(t, "serve", ProcessOptions{Workers: tc.workers}, testConcEnv+"="+tc.concurrency)
			const goroutines, each = 16, 25
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*each)
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						// Some inputs sleep, so that a multiplexed worker
						// answers out of order.
						in := fmt.Sprintf("input-%d-%d", g, i)
						if i%5 == 0 {
							in = fmt.Sprintf("sleep:%d", (g+i)%7)
						}
						out, err := compute(t, p, in)
						if err != nil {
							errs <- fmt.Errorf("Compute(%q): %w", in, err)
						} else if string(out) != "echo:"+in {
							errs <- fmt.Errorf("Compute(%q) = %q; want %q", in, out, "echo:"+in)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := inflight(p); n != 0 {
				t.Errorf("%d places still taken after every call returned", n)
			}
		})
	}
}

func TestProcessEmptyInputAndResult(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{})
	if got := mustCompute(t, p, ""); got != "echo:" {
		t.Errorf("Compute(\"\") = %q; want %q", got, "echo:")
	}
}

func TestProcessWorkerError(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{})
	pid := mustCompute(t, p, "pid")
	_, err := compute(t, p, "fail:no such thing: \xff")
	var we *WorkerError
	if !errors.As(err, &we) {
		t.Fatalf("error %v; want a *WorkerError", err)
	}
	if we.Message != "no such thing: \uFFFD" {
		t.Errorf("Message %q; want the worker's text with invalid UTF-8 replaced", we.Message)
	}
	if got := mustCompute(t, p, "pid"); got != pid {
		t.Errorf("an error frame replaced the worker: pid %s, then %s", pid, got)
	}
}

func TestProcessCrashMidTask(t *testing.T) {
	p, logs := testPool(t, "serve", ProcessOptions{})
	pid, _ := strconv.Atoi(mustCompute(t, p, "pid"))
	_, err := compute(t, p, "crash")
	wantErrContains(t, err, ErrWorkerCrashed, "exit status 3", "crashing on purpose")
	eventually(t, "the crashed worker is reaped", func() bool { return processGone(pid) })
	if got := mustCompute(t, p, "after"); got != "echo:after" {
		t.Errorf("the replacement answered %q", got)
	}
	if !strings.Contains(logs.String(), "crashing on purpose") {
		t.Errorf("the worker's stderr line is not in the log")
	}
}

func TestProcessHangPastDeadline(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{})
	pid, _ := strconv.Atoi(mustCompute(t, p, "pid"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Compute(ctx, []byte("hang"))
	wantErrContains(t, err, ErrWorkerTimeout, "deadline")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not match context.DeadlineExceeded", err)
	}
	eventually(t, "the hung worker is killed and reaped", func() bool { return processGone(pid) })
	if got := mustCompute(t, p, "pid"); got == strconv.Itoa(pid) {
		t.Errorf("the hung worker (pid %d) still answers", pid)
	}
}

func TestProcessGarbage(t *testing.T) {
	for _, tc := range []struct{ input, says string }{
		{"garbage", `"this is not a"`},
		{"unknown-id", "not in flight"},
		{"oversize", "frame too large"},
	} {
		t.Run(tc.input, func(t *testing.T) {
			p, _ := testPool(t, "serve", ProcessOptions{MaxFrameSize: 1024})
			pid, _ := strconv.Atoi(mustCompute(t, p, "pid"))
			_, err := compute(t, p, tc.input)
			wantErrContains(t, err, ErrProtocol, tc.says)
			eventually(t, "the worker is killed and reaped", func() bool { return processGone(pid) })
			if got := mustCompute(t, p, "next"); got != "echo:next" {
				t.Errorf("the replacement answered %q", got)
			}
		})
	}
}

func TestProcessStartFailure(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		opts  ProcessOptions
		parts []string
	}{
		{"exit-at-start", ProcessOptions{}, []string{"exited before sending its hello frame", "exit status 2", "boom: missing config"}},
		{"bad-hello", ProcessOptions{}, []string{"Traceback", "stdout"}},
		{"no-hello", ProcessOptions{StartTimeout: 300 * time.Millisecond}, []string{"no hello frame within 300ms"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p, _, err := newTestPool(t, tc.mode, tc.opts)
			if err == nil {
				p.Close()
				t.Fatal("NewProcess succeeded")
			}
			wantErrContains(t, err, ErrWorkerStart, tc.parts...)
		})
	}
	t.Run("not found", func(t *testing.T) {
		_, err := NewProcess(ProcessOptions{
			Command: []string{filepath.Join(t.TempDir(), "no-such-worker")},
			Workers: 1,
			Logger:  slog.New(slog.DiscardHandler),
		})
		wantErrContains(t, err, ErrWorkerStart, "no-such-worker")
	})
}

// A worker that starts once and then fails at every start: callers get the
// start failure at once, and the pool restarts it with a growing delay, not
// in a loop.
func TestProcessRestartBackoff(t *testing.T) {
	starts := filepath.Join(t.TempDir(), "starts")
	p, _ := testPool(t, "start-then-fail", ProcessOptions{}, marker(t), testStartsEnv+"="+starts)
	_, err := compute(t, p, "crash")
	wantErrContains(t, err, ErrWorkerCrashed, "exit status 3")
	_, err = compute(t, p, "x")
	wantErrContains(t, err, ErrWorkerStart, "boom: broken after the first start", "exit status 2")

	// Callers keep getting the error at once while the pool backs off.
	// Without a delay between starts, this second would fork hundreds of
	// workers; with it, a few.
	stop := time.Now().Add(time.Second)
	for time.Now().Before(stop) {
		if _, err := compute(t, p, "x"); !errors.Is(err, ErrWorkerStart) {
			t.Fatalf("error %v; want ErrWorkerStart", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(starts)
	if n := strings.Count(string(b), "\n"); n > 10 {
		t.Errorf("%d starts in about a second: no back-off", n)
	}
}

func TestProcessRetryOnCrash(t *testing.T) {
	t.Run("the retry succeeds", func(t *testing.T) {
		p, _ := testPool(t, "serve", ProcessOptions{Workers: 2, RetryOnCrash: true}, marker(t))
		if got := mustCompute(t, p, "crash-once"); got != "echo:crash-once" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("the retry fails too", func(t *testing.T) {
		p, _ := testPool(t, "serve", ProcessOptions{Workers: 2, RetryOnCrash: true})
		_, err := compute(t, p, "crash")
		wantErrContains(t, err, ErrWorkerCrashed, "this was the retry")
	})
	t.Run("off by default", func(t *testing.T) {
		p, _ := testPool(t, "serve", ProcessOptions{Workers: 2}, marker(t))
		_, err := compute(t, p, "crash-once")
		wantErrContains(t, err, ErrWorkerCrashed, "crashing once on purpose")
	})
	t.Run("not after an error frame", func(t *testing.T) {
		p, _ := testPool(t, "serve", ProcessOptions{RetryOnCrash: true})
		_, err := compute(t, p, "fail:bad")
		var we *WorkerError
		if !errors.As(err, &we) || strings.Contains(err.Error(), "retry") {
			t.Errorf("error %v; want the *WorkerError, not retried", err)
		}
	})
}

// A caller that leaves gets ctx.Err() at once; a worker that honours the
// cancel frame keeps its process, one that ignores it past CancelGrace is
// replaced.
func TestProcessCancel(t *testing.T) {
	t.Run("honoured", func(t *testing.T) {
		p, _ := testPool(t, "serve", ProcessOptions{}, testConcEnv+"=4")
		pid := mustCompute(t, p, "pid")
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			eventually(t, "the request is in flight", func() bool { return inflight(p) == 1 })
			cancel()
		}()
		_, err := p.Compute(ctx, []byte("sleep:600000"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v; want context.Canceled", err)
		}
		eventually(t, "the worker confirms the cancel", func() bool { return inflight(p) == 0 })
		if got := mustCompute(t, p, "pid"); got != pid {
			t.Errorf("the worker was replaced (pid %s, then %s)", pid, got)
		}
	})
	t.Run("ignored past the grace", func(t *testing.T) {
		p, _ := testPool(t, "serve", ProcessOptions{CancelGrace: 100 * time.Millisecond})
		pid, _ := strconv.Atoi(mustCompute(t, p, "pid"))
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			eventually(t, "the request is in flight", func() bool { return inflight(p) == 1 })
			cancel()
		}()
		if _, err := p.Compute(ctx, []byte("hang")); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v; want context.Canceled", err)
		}
		eventually(t, "the worker is killed as hung", func() bool { return processGone(pid) })
		if got := mustCompute(t, p, "after"); got != "echo:after" {
			t.Errorf("the replacement answered %q", got)
		}
	})
}

func TestProcessWaitsForAPlace(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{})
	hung := make(chan error, 1)
	go func() {
		_, err := p.Compute(context.Background(), []byte("hang"))
		hung <- err
	}()
	eventually(t, "the hang is in flight", func() bool { return inflight(p) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Compute(ctx, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrWorkerTimeout) {
		t.Errorf("error %v; want context.DeadlineExceeded while waiting, not a worker timeout", err)
	}
	p.Close()
	if err := <-hung; !errors.Is(err, ErrClosed) {
		t.Errorf("the hung call ended with %v; want ErrClosed", err)
	}
}

// Close with calls in flight answers them with ErrClosed, kills and reaps
// every worker, and leaves no goroutine behind.
func TestProcessCloseInFlight(t *testing.T) {
	p, _, err := newTestPool(t, "serve", ProcessOptions{Workers: 2}, testConcEnv+"=2")
	if err != nil {
		t.Fatal(err)
	}
	const calls = 4
	errs := make(chan error, calls)
	for i := range calls {
		in := "hang"
		if i%2 == 1 {
			in = "sleep:600000"
		}
		go func() {
			_, err := p.Compute(context.Background(), []byte(in))
			errs <- err
		}()
	}
	eventually(t, "every call is in flight", func() bool { return inflight(p) == calls })
	pids := livePIDs(p)
	if len(pids) != 2 {
		t.Fatalf("%d live workers; want 2", len(pids))
	}
	p.Close()
	for range calls {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("a call in flight ended with %v; want ErrClosed", err)
		}
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("worker pid %d outlived Close", pid)
		}
	}
	if _, err := p.Compute(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Compute after Close: %v; want ErrClosed", err)
	}
	p.Close() // twice is fine
	goleak.VerifyNone(t)
}

func TestProcessInputTooLarge(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{MaxFrameSize: 1024})
	_, err := compute(t, p, strings.Repeat("x", 1025))
	wantErrContains(t, err, ErrInputTooLarge, "1025")
	if got := mustCompute(t, p, strings.Repeat("x", 1019)); len(got) != 1024 {
		t.Errorf("a result of exactly MaxFrameSize: %d bytes", len(got))
	}
}

func TestProcessOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		opts ProcessOptions
		says string
	}{
		{ProcessOptions{}, "Command"},
		{ProcessOptions{Command: []string{""}}, "Command"},
		{ProcessOptions{Command: []string{"w"}, Workers: -1}, "Workers"},
		{ProcessOptions{Command: []string{"w"}, Workers: LimitWorkers + 1}, "Workers"},
		{ProcessOptions{Command: []string{"w"}, MaxFrameSize: 4}, "MaxFrameSize"},
		{ProcessOptions{Command: []string{"w"}, MaxFrameSize: LimitFrameSize + 1}, "MaxFrameSize"},
		{ProcessOptions{Command: []string{"w"}, StartTimeout: -1}, "StartTimeout"},
		{ProcessOptions{Command: []string{"w"}, CancelGrace: -1}, "CancelGrace"},
		{ProcessOptions{Command: []string{"w"}, Env: []string{"NOEQUALS"}}, "KEY=VALUE"},
	} {
		if _, err := NewProcess(tc.opts); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("NewProcess(%+v): %v; want an error about %s", tc.opts, err, tc.says)
		}
	}
}

// Calls of every kind at once, some of which crash their worker: every call
// returns, with its right result or with ErrWorkerCrashed (the calls sharing
// a crashing worker), and the pool serves normally afterwards.
func TestProcessChaos(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{Workers: 2}, testConcEnv+"=4")
	var wg sync.WaitGroup
	var mu sync.Mutex
	crashed := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 15 {
				in := fmt.Sprintf("in-%d-%d", g, i)
				switch (g*15 + i) % 10 {
				case 3:
					in = "crash"
				case 5, 7:
					in = fmt.Sprintf("sleep:%d", i%4)
				}
				out, err := compute(t, p, in)
				switch {
				case errors.Is(err, ErrWorkerCrashed):
					mu.Lock()
					crashed++
					mu.Unlock()
				case err != nil:
					t.Errorf("Compute(%q): %v", in, err)
				case in == "crash" || string(out) != "echo:"+in:
					t.Errorf("Compute(%q) = %q", in, out)
				}
			}
		})
	}
	wg.Wait()
	if crashed < 12 {
		t.Errorf("%d calls failed with ErrWorkerCrashed; the 12 crash inputs at least must", crashed)
	}
	if got := mustCompute(t, p, "after"); got != "echo:after" {
		t.Errorf("after the chaos: %q", got)
	}
	eventually(t, "both workers are back", func() bool { return len(livePIDs(p)) == 2 })
	if n := inflight(p); n != 0 {
		t.Errorf("%d places still taken", n)
	}
}

// A call whose deadline has passed before it is sent must not cost a
// worker its life.
func TestProcessDeadlinePassedBeforeSending(t *testing.T) {
	p, _ := testPool(t, "serve", ProcessOptions{})
	pid := mustCompute(t, p, "pid")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := p.Compute(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrWorkerTimeout) {
		t.Errorf("error %v; want context.DeadlineExceeded, not a worker timeout", err)
	}
	if got := mustCompute(t, p, "pid"); got != pid {
		t.Errorf("the worker was replaced (pid %s, then %s)", pid, got)
	}
}
