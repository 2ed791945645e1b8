package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstreamServer serves handler on 127.0.0.1 and returns an Upstream in
// front of it; both are closed when the test ends.
func upstreamServer(t *testing.T, handler http.HandlerFunc, opts UpstreamOptions) (*Upstream, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	opts.URL = srv.URL + "/compute"
	u, err := NewUpstream(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, srv
}

func upCompute(u *Upstream, input string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return u.Compute(ctx, []byte(input))
}

func TestUpstreamSuccess(t *testing.T) {
	u, _ := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/compute" {
			http.Error(w, "wrong method or path: "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "up:%s;%s;%s", body, r.Header.Get("Content-Type"), r.Header.Get("X-Token"))
	}, UpstreamOptions{Header: http.Header{"X-Token": {"secret"}}})
	out, err := upCompute(u, "input")
	if err != nil {
		t.Fatal(err)
	}
	if want := "up:input;application/octet-stream;secret"; string(out) != want {
		t.Errorf("got %q; want %q", out, want)
	}
}

// MaxConns bounds the connections the upstream sees, however many calls
// run at once; all of them still succeed.
func TestUpstreamMaxConns(t *testing.T) {
	var open, peak atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n := open.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	u, err := NewUpstream(UpstreamOptions{URL: srv.URL, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			in := fmt.Sprint("in-", i)
			if out, err := upCompute(u, in); err != nil || string(out) != in {
				t.Errorf("Compute(%q) = %q, %v", in, out, err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Errorf("%d connections open at once; MaxConns is 2", p)
	}
}

func TestUpstreamFailureStatus(t *testing.T) {
	u, _ := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch string(must(io.ReadAll(r.Body))) {
		case "long":
			http.Error(w, strings.Repeat("x", 10000), http.StatusInternalServerError)
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			http.Error(w, "overloaded, retry later", http.StatusServiceUnavailable)
		}
	}, UpstreamOptions{})
	for _, tc := range []struct {
		input  string
		status int
		body   string
	}{
		{"x", 503, "overloaded, retry later"},
		{"long", 500, strings.Repeat("x", maxErrorBody)},
		{"redirect", 302, ""}, // not followed
	} {
		_, err := upCompute(u, tc.input)
		var ue *UpstreamError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUpstream) {
			t.Fatalf("%s: error %v; want an *UpstreamError matching ErrUpstream", tc.input, err)
		}
		if ue.Status != tc.status || ue.Body != tc.body {
			t.Errorf("%s: status %d, body %q; want %d, %q", tc.input, ue.Status, ue.Body, tc.status, tc.body)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUpstreamStall(t *testing.T) {
	stall := func(w http.ResponseWriter, r *http.Request) {
		// With the body read, the server watches the connection and
		// cancels r.Context() when the client hangs up.
		io.ReadAll(r.Body)
		<-r.Context().Done()
	}
	t.Run("Timeout", func(t *testing.T) {
		u, _ := upstreamServer(t, stall, UpstreamOptions{Timeout: 100 * time.Millisecond})
		_, err := upCompute(u, "x")
		wantErrContains(t, err, ErrUpstream, "within 100ms (Timeout)")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not match context.DeadlineExceeded", err)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		u, _ := upstreamServer(t, stall, UpstreamOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := u.Compute(ctx, []byte("x"))
		wantErrContains(t, err, ErrUpstream, "caller's deadline")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not match context.DeadlineExceeded", err)
		}
	})
	t.Run("caller left", func(t *testing.T) {
		u, _ := upstreamServer(t, stall, UpstreamOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := u.Compute(ctx, []byte("x"))
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUpstream) {
			t.Errorf("error %v; want context.Canceled, not blamed on the upstream", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		u, _ := upstreamServer(t, stall, UpstreamOptions{})
		done := make(chan error, 1)
		go func() { _, err := upCompute(u, "x"); done <- err }()
		time.Sleep(50 * time.Millisecond) // let the request reach the server; correct either way
		u.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("a call in flight at Close ended with %v; want ErrClosed", err)
		}
		if _, err := upCompute(u, "x"); !errors.Is(err, ErrClosed) {
			t.Errorf("Compute after Close: %v; want ErrClosed", err)
		}
	})
}

func TestUpstreamConnectionReset(t *testing.T) {
	u, _ := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with a reset, not a clean end
		}
		conn.Close()
	}, UpstreamOptions{})
	_, err := upCompute(u, "x")
	wantErrContains(t, err, ErrUpstream, "POST")
}

func TestUpstreamRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	u, err := NewUpstream(UpstreamOptions{URL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, err = upCompute(u, "x")
	wantErrContains(t, err, ErrUpstream, addr)
}

func TestUpstreamOversizedBody(t *testing.T) {
	const max = 1000
	var streamed atomic.Int64
	u, _ := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch string(must(io.ReadAll(r.Body))) {
		case "announced":
			w.Header().Set("Content-Length", fmt.Sprint(max+1))
			w.Write(make([]byte, max+1))
		case "exact":
			w.Write(make([]byte, max))
		default: // endless, without a length, until the client hangs up
			chunk := make([]byte, 4096)
			for range 1 << 14 { // 64 MiB at most, against a hang
				n, err := w.Write(chunk)
				streamed.Add(int64(n))
				if err != nil {
					return
				}
				http.NewResponseController(w).Flush()
			}
		}
	}, UpstreamOptions{MaxResponseSize: max})
	for _, in := range []string{"announced", "endless"} {
		_, err := upCompute(u, in)
		wantErrContains(t, err, ErrResultTooLarge, "MaxResponseSize (1000")
		if !errors.Is(err, ErrUpstream) {
			t.Errorf("%s: error %v does not match ErrUpstream", in, err)
		}
	}
	if out, err := upCompute(u, "exact"); err != nil || len(out) != max {
		t.Errorf("a body of exactly MaxResponseSize: %d bytes, %v", len(out), err)
	}
	if n := streamed.Load(); n >= 64<<20 {
		t.Errorf("the client read the endless body to the server's bound (%d bytes)", n)
	}
}

func TestUpstreamOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		opts UpstreamOptions
		says string
	}{
		{UpstreamOptions{}, "URL"},
		{UpstreamOptions{URL: "127.0.0.1:9000"}, "http://"},
		{UpstreamOptions{URL: "ftp://host/x"}, "http://"},
		{UpstreamOptions{URL: "http://"}, "with a host"},
		{UpstreamOptions{URL: "http://h", Timeout: -1}, "Timeout"},
		{UpstreamOptions{URL: "http://h", MaxConns: -1}, "MaxConns"},
		{UpstreamOptions{URL: "http://h", MaxResponseSize: LimitResponseSize + 1}, "MaxResponseSize"},
	} {
		if _, err := NewUpstream(tc.opts); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("NewUpstream(%+v): %v; want an error about %s", tc.opts, err, tc.says)
		}
	}
}
