package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// LimitResponseSize bounds UpstreamOptions.MaxResponseSize (1 GiB).
	LimitResponseSize = 1 << 30
	// LimitConns bounds UpstreamOptions.MaxConns.
	LimitConns = 1 << 16

	defaultUpstreamTimeout = 30 * time.Second
	defaultMaxConns        = 64
	defaultMaxResponseSize = 4 << 20

	// maxErrorBody bounds the part of a failed response's body kept in an
	// *UpstreamError: enough to read the upstream's message, no more.
	maxErrorBody = 512
)

// UpstreamOptions configures an Upstream. The zero value of every field but
// URL is a documented default.
type UpstreamOptions struct {
	// URL receives each input as the body of a POST. An http or https URL;
	// required.
	URL string

	// Timeout bounds each request, from sending it to the end of the
	// response body; the caller's context bounds it too. Zero means 30 s.
	Timeout time.Duration

	// MaxConns bounds the connections open to the upstream at once (dialing,
	// active and idle): requests beyond it wait for a connection, bounded by
	// their context. Zero means 64.
	MaxConns int

	// MaxResponseSize bounds a response body: a longer one fails with
	// ErrResultTooLarge, having read at most this many bytes plus one. Zero
	// means 4 MiB.
	MaxResponseSize int64

	// Header is added to every request (an Authorization header, say).
	// Content-Type defaults to application/octet-stream.
	Header http.Header
}

func (o UpstreamOptions) withDefaults() (UpstreamOptions, error) {
	bad := func(field string, v any, allowed string) error {
		return fmt.Errorf("executor: UpstreamOptions.%s is %v; %s", field, v, allowed)
	}
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return o, bad("URL", `""`, "give the upstream's address, e.g. http://127.0.0.1:9000/compute")
	case err != nil:
		return o, bad("URL", fmt.Sprintf("%q", o.URL), "it must be an absolute http:// or https:// URL with a host ("+err.Error()+")")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return o, bad("URL", fmt.Sprintf("%q", o.URL), "it must be an absolute http:// or https:// URL with a host")
	case o.Timeout < 0:
		return o, bad("Timeout", o.Timeout, "it must be positive, or zero for 30 s")
	case o.MaxConns < 0 || o.MaxConns > LimitConns:
		return o, bad("MaxConns", o.MaxConns, fmt.Sprintf("it must be from 1 to %d, or zero for 64", LimitConns))
	case o.MaxResponseSize < 0 || o.MaxResponseSize > LimitResponseSize:
		return o, bad("MaxResponseSize", o.MaxResponseSize, fmt.Sprintf("it must be from 1 to %d bytes, or zero for 4 MiB", LimitResponseSize))
	}
	if o.Timeout == 0 {
		o.Timeout = defaultUpstreamTimeout
	}
	if o.MaxConns == 0 {
		o.MaxConns = defaultMaxConns
	}
	if o.MaxResponseSize == 0 {
		o.MaxResponseSize = defaultMaxResponseSize
	}
	o.Header = o.Header.Clone()
	if o.Header == nil {
		o.Header = make(http.Header)
	}
	if o.Header.Get("Content-Type") == "" {
		o.Header.Set("Content-Type", "application/octet-stream")
	}
	return o, nil
}

// Upstream computes a result by POSTing the input to an HTTP service and
// returning its 2xx response body, which makes the daemon a coalescing cache
// in front of that service.
//
// It is safe for concurrent use. Each call is bounded by its context and by
// UpstreamOptions.Timeout; redirects are not followed (a 3xx is an
// *UpstreamError). Close cancels the requests in flight, waits for them and
// closes the idle connections.
type Upstream struct {
	opts      UpstreamOptions
	transport *http.Transport
	client    *http.Client
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // calls in flight
}

// NewUpstream checks opts and returns an Upstream. It does not contact the
// upstream.
func NewUpstream(opts UpstreamOptions) (*Upstream, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = opts.MaxConns
	t.MaxIdleConnsPerHost = opts.MaxConns
	u := &Upstream{opts: opts, transport: t}
	u.client = &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	return u, nil
}

// Compute POSTs input to the upstream and returns the response body, or an
// error matching ErrUpstream (an *UpstreamError for a non-2xx status).
func (u *Upstream) Compute(ctx context.Context, input []byte) ([]byte, error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, ErrClosed
	}
	u.wg.Add(1)
	u.mu.Unlock()
	defer u.wg.Done()

	rctx, cancel := context.WithTimeout(ctx, u.opts.Timeout)
	defer cancel()
	stop := context.AfterFunc(u.ctx, cancel)
	defer stop()

	val, err := u.post(rctx, input)
	if err == nil {
		return val, nil
	}
	var ue *UpstreamError
	switch {
	case errors.As(err, &ue) || errors.Is(err, ErrResultTooLarge):
		return nil, err
	case u.ctx.Err() != nil:
		return nil, ErrClosed
	case errors.Is(ctx.Err(), context.Canceled):
		return nil, fmt.Errorf("executor: upstream request abandoned: %w", ctx.Err())
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %s did not answer before the caller's deadline: %w", ErrUpstream, u.opts.URL, ctx.Err())
	case rctx.Err() != nil:
		return nil, fmt.Errorf("%w: %s did not answer within %v (Timeout): %w", ErrUpstream, u.opts.URL, u.opts.Timeout, context.DeadlineExceeded)
	}
	return nil, fmt.Errorf("%w: POST %s: %w", ErrUpstream, u.opts.URL, err)
}

// post sends one request and reads its response within the limits.
func (u *Upstream) post(ctx context.Context, input []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.opts.URL, bytes.NewReader(input))
	if err != nil {
		return nil, err
	}
	for k, v := range u.opts.Header {
		req.Header[k] = v
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	max := u.opts.MaxResponseSize
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &UpstreamError{
			Status: resp.StatusCode,
			Body:   strings.TrimSpace(strings.ToValidUTF8(string(snippet), "\uFFFD")),
		}
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("%w: %w: %s announced a body of %d bytes, more than MaxResponseSize (%d)", ErrUpstream, ErrResultTooLarge, u.opts.URL, resp.ContentLength, max)
	}
	// Sized from Content-Length when the upstream sends one, so a result
	// is read without regrowing; never beyond max+1 either way.
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, max+1))
	if n > max {
		return nil, fmt.Errorf("%w: %w: the body from %s is longer than MaxResponseSize (%d bytes)", ErrUpstream, ErrResultTooLarge, u.opts.URL, max)
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Close cancels the requests in flight, waits for them to return and closes
// idle connections. Later calls fail with ErrClosed.
func (u *Upstream) Close() error {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	u.cancel()
	u.wg.Wait()
	u.transport.CloseIdleConnections()
	return nil
}
