package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// testFunc upper-cases its input after release is closed (nil: at once);
// "fail" fails, "panic" panics. It counts its calls.
type testFunc struct {
	calls   atomic.Int64
	release chan struct{}
}

func (f *testFunc) fn(ctx context.Context, in []byte) ([]byte, error) {
	f.calls.Add(1)
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch string(in) {
	case "fail":
		return nil, errors.New("no such thing")
	case "panic":
		panic("secret internal detail")
	}
	return bytes.ToUpper(in), nil
}

func newTestServer(t *testing.T, f *testFunc, opts coalesce.Options, cfg Config) (*httptest.Server, *coalesce.Group) {
	t.Helper()
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 8 << 20
	}
	g, err := coalesce.New(f.fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
		g.Close()
	})
	return ts, g
}

func post(t *testing.T, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code
}

func TestComputeHitAndCacheStatus(t *testing.T) {
	f := &testFunc{}
	ts, _ := newTestServer(t, f, coalesce.Options{}, Config{})
	resp, body := post(t, ts.URL+"/v1/compute", "abc")
	if resp.StatusCode != 200 || body != "ABC" || resp.Header.Get("Cache-Status") != "coalesce; fwd=miss; stored" {
		t.Fatalf("%d %q %q", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
	key := resp.Header.Get(headerKey)
	resp, body = post(t, ts.URL+"/v1/compute", "abc")
	if resp.StatusCode != 200 || body != "ABC" || resp.Header.Get("Cache-Status") != "coalesce; hit" || resp.Header.Get(headerKey) != key {
		t.Fatalf("%d %q %q", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
	resp, body = get(t, ts.URL+"/v1/results/"+key)
	if resp.StatusCode != 200 || body != "ABC" {
		t.Fatalf("GET result: %d %q", resp.StatusCode, body)
	}
	if c := f.calls.Load(); c != 1 {
		t.Fatalf("%d calls", c)
	}
}

func TestConcurrentIdenticalRequestsCollapse(t *testing.T) {
	f := &testFunc{release: make(chan struct{})}
	ts, g := newTestServer(t, f, coalesce.Options{Workers: 2}, Config{})
	const n = 50
	var wg sync.WaitGroup
	statuses := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := post(t, ts.URL+"/v1/compute", "same")
			if resp.StatusCode != 200 || body != "SAME" {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
			statuses[i] = resp.Header.Get("Cache-Status")
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().Waiters < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(f.release)
	wg.Wait()
	if c := f.calls.Load(); c != 1 {
		t.Fatalf("%d calls for 50 identical requests", c)
	}
	collapsed := 0
	for _, s := range statuses {
		if strings.Contains(s, "collapsed") {
			collapsed++
		}
	}
	if collapsed != n-1 {
		t.Errorf("%d of %d requests marked collapsed; want %d", collapsed, n, n-1)
	}
}

func TestErrorsAreJSONWithCodes(t *testing.T) {
	f := &testFunc{}
	ts, _ := newTestServer(t, f, coalesce.Options{MaxInputSize: 16}, Config{})
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{"fail", 502, codeExecutorFailed},
		{"panic", 502, codeExecutorFailed},
		{strings.Repeat("x", 17), 413, codeInputTooLarge},
	} {
		resp, body := post(t, ts.URL+"/v1/compute", tc.body)
		if resp.StatusCode != tc.status || errorCode(t, body) != tc.code {
			t.Errorf("%q: %d %s; want %d %s", tc.body, resp.StatusCode, body, tc.status, tc.code)
		}
		if strings.Contains(body, "secret internal detail") || strings.Contains(body, "goroutine") {
			t.Errorf("%q: the panic leaked to the client: %s", tc.body, body)
		}
	}
	resp, body := get(t, ts.URL+"/v1/results/nothex")
	if resp.StatusCode != 400 || errorCode(t, body) != codeBadRequest {
		t.Errorf("bad key: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, ts.URL+"/v1/results/"+strings.Repeat("0", 32))
	if resp.StatusCode != 404 || errorCode(t, body) != codeNotFound {
		t.Errorf("unknown key: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, ts.URL+"/v1/compute")
	if resp.StatusCode != 405 {
		t.Errorf("GET /v1/compute: %d", resp.StatusCode)
	}
}

func TestRespondAsyncAndPoll(t *testing.T) {
	f := &testFunc{release: make(chan struct{})}
	ts, _ := newTestServer(t, f, coalesce.Options{}, Config{})
	resp, body := post(t, ts.URL+"/v1/compute", "later", "Prefer", "respond-async")
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var acc asyncAccepted
	json.Unmarshal([]byte(body), &acc)
	if !acc.Started || acc.Key == "" || resp.Header.Get("Location") != "/v1/results/"+acc.Key {
		t.Fatalf("%+v %v", acc, resp.Header)
	}
	resp, _ = post(t, ts.URL+"/v1/compute", "later", "Prefer", "respond-async")
	if resp.StatusCode != 202 {
		t.Fatalf("second: %d", resp.StatusCode)
	}
	if resp, _ := get(t, ts.URL+"/v1/results/"+acc.Key); resp.StatusCode != 202 {
		t.Fatalf("poll while pending: %d", resp.StatusCode)
	}
	close(f.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, ts.URL+"/v1/results/"+acc.Key)
		if resp.StatusCode == 200 {
			if body != "LATER" {
				t.Fatalf("%q", body)
			}
			break
		}
		if resp.StatusCode != 202 || time.Now().After(deadline) {
			t.Fatalf("poll: %d %s", resp.StatusCode, body)
		}
		time.Sleep(time.Millisecond)
	}
	resp, body = post(t, ts.URL+"/v1/compute", "later", "Prefer", "respond-async")
	if resp.StatusCode != 200 || body != "LATER" || resp.Header.Get("Cache-Status") != "coalesce; hit" {
		t.Fatalf("respond-async of a cached input: %d %q", resp.StatusCode, body)
	}
	if c := f.calls.Load(); c != 1 {
		t.Fatalf("%d calls", c)
	}
}

func TestAsyncFailureIsReported(t *testing.T) {
	f := &testFunc{}
	ts, _ := newTestServer(t, f, coalesce.Options{}, Config{})
	f.release = make(chan struct{})
	resp, body := post(t, ts.URL+"/v1/compute", "fail", "Prefer", "respond-async")
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	key := resp.Header.Get(headerKey)
	close(f.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, ts.URL+"/v1/results/"+key)
		if resp.StatusCode == 502 && errorCode(t, body) == codeExecutorFailed {
			return
		}
		if resp.StatusCode != 202 || time.Now().After(deadline) {
			t.Fatalf("poll of a failed computation: %d %s", resp.StatusCode, body)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPreferWaitBoundsTheWait(t *testing.T) {
	f := &testFunc{release: make(chan struct{})}
	defer close(f.release)
	ts, _ := newTestServer(t, f, coalesce.Options{}, Config{})
	resp, body := post(t, ts.URL+"/v1/compute", "slow", "Prefer", "wait=1")
	if resp.StatusCode != 504 || errorCode(t, body) != codeWaitExceeded {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = post(t, ts.URL+"/v1/compute", "slow", "Prefer", "respond-async, wait=1")
	if resp.StatusCode != 202 {
		t.Fatalf("respond-async, wait=1: %d %s", resp.StatusCode, body)
	}
}

func TestClientDisconnectFreesItsWait(t *testing.T) {
	f := &testFunc{release: make(chan struct{})}
	defer close(f.release)
	ts, g := newTestServer(t, f, coalesce.Options{}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/compute", strings.NewReader("gone"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().Waiters != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	for g.Stats().Waiters != 0 || g.Stats().InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the client left: %+v", g.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if g.Stats().Abandoned != 1 {
		t.Fatalf("Abandoned %d, want 1", g.Stats().Abandoned)
	}
}

func TestBatchBinaryAndJSON(t *testing.T) {
	f := &testFunc{}
	ts, _ := newTestServer(t, f, coalesce.Options{}, Config{MaxBatchItems: 4})
	post(t, ts.URL+"/v1/compute", "a")
	resp, body := post(t, ts.URL+"/v1/compute/batch", string(frame("a", "b", "fail", "b")), "Content-Type", batchBinaryType)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != batchBinaryType {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	type rec struct {
		outcome byte
		payload string
	}
	var recs []rec
	for b := []byte(body); len(b) > 0; {
		n := binary.BigEndian.Uint32(b[1:5])
		recs = append(recs, rec{b[0], string(b[5 : 5+n])})
		b = b[5+n:]
	}
	if len(recs) != 4 || recs[0] != (rec{outcomeHit, "A"}) || recs[1] != (rec{outcomeComputed, "B"}) ||
		recs[2].outcome != outcomeError || !strings.Contains(recs[2].payload, codeExecutorFailed) || recs[3] != (rec{outcomeJoined, "B"}) {
		t.Fatalf("%+v", recs)
	}

	resp, body = post(t, ts.URL+"/v1/compute/batch", `{"inputs":["YQ==","Yw=="]}`, "Content-Type", "application/json")
	if resp.StatusCode != 200 || body != `{"results":[{"value":"QQ==","source":"hit"},{"value":"Qw==","source":"computed"}]}`+"\n" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		body, ctype string
		status      int
		code        string
	}{
		{"x", "text/plain", 415, codeUnsupportedType},
		{string(frame("a", "b", "c", "d", "e")), batchBinaryType, 413, codeBatchTooLarge},
		{`{"inputs":[]}`, "application/json", 400, codeBadRequest},
		{string([]byte{0, 0, 0, 9}), batchBinaryType, 400, codeBadRequest},
		{string(frame("a", strings.Repeat("x", 70<<10))), batchBinaryType, 413, codeInputTooLarge},
	} {
		resp, body := post(t, ts.URL+"/v1/compute/batch", tc.body, "Content-Type", tc.ctype)
		if resp.StatusCode != tc.status || errorCode(t, body) != tc.code {
			t.Errorf("%q as %s: %d %s; want %d %s", tc.body, tc.ctype, resp.StatusCode, body, tc.status, tc.code)
		}
	}
}

func TestToken(t *testing.T) {
	f := &testFunc{}
	ts, _ := newTestServer(t, f, coalesce.Options{}, Config{Token: "s3cret"})
	resp, body := post(t, ts.URL+"/v1/compute", "a")
	if resp.StatusCode != 401 || errorCode(t, body) != codeUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := post(t, ts.URL+"/v1/compute", "a", "Authorization", "Bearer wrong"); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	if resp, body := post(t, ts.URL+"/v1/compute", "a", "Authorization", "Bearer s3cret"); resp.StatusCode != 200 || body != "A" {
		t.Fatalf("right token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz needs no token: %d", resp.StatusCode)
	}
}

func TestTooManyWaiters(t *testing.T) {
	f := &testFunc{release: make(chan struct{})}
	ts, g := newTestServer(t, f, coalesce.Options{}, Config{MaxWaiters: 2})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			post(t, ts.URL+"/v1/compute", fmt.Sprint("w", i))
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().Waiters != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	resp, body := post(t, ts.URL+"/v1/compute", "third")
	close(f.release)
	wg.Wait()
	if resp.StatusCode != 503 || errorCode(t, body) != codeTooManyWaiters || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
