// Package client talks to the `coalesce serve` daemon (docs/SERVER.md) with
// the library's calls: Get blocks for a result, Start answers at once with
// a Pending to poll, GetMany sends a batch, each in the namespace and
// version of the computation the Client names (Options.Namespace,
// Options.Version, or Client.Namespace). Errors wrap the library's, so
// errors.Is(err, coalesce.ErrOverloaded) means what it means in-process.
//
// The one thing to know: a call's context is the request's. When it ends,
// the request is cancelled and the daemon frees the wait at once; the
// computation goes on only if other requests still wait for it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coalesce-go/coalesce"
)

// Options configures a Client. The zero value talks to the URL given to
// New over TCP, with no token.
type Options struct {
	// Token is the daemon's bearer token (its --token-file); "" sends none.
	Token string

	// HTTPClient sends the requests. Nil means a client of its own whose
	// transport keeps up to 100 idle connections to the daemon, so that a
	// caller in a loop reuses them. It must not be set with SocketPath.
	HTTPClient *http.Client

	// SocketPath, if set, is the daemon's Unix socket (its --socket):
	// every request is sent over it, whatever the host in the base URL.
	SocketPath string

	// BatchSize bounds the inputs GetMany sends in one request; a longer
	// slice is sent in several, one after another. Zero means 1024, the
	// daemon's default --max-batch.
	BatchSize int

	// Namespace names the namespace every Get, Start, Poll and GetMany is
	// served in (the Coalesce-Namespace header): a result computed in one
	// namespace is never served in another. "" means the default
	// namespace. The daemon allows up to 128 bytes of printable ASCII
	// without spaces and answers anything else with bad_namespace
	// (coalesce.ErrBadNamespace); the Client itself refuses only what
	// cannot be sent in a header.
	Namespace string

	// Version names the version of the computation (the Coalesce-Version
	// header), under the same rules: results of one version are never
	// served for another. "" means the daemon's --version.
	Version string
}

const (
	defaultBatchSize = 1024
	maxIdleConns     = 100
	// idleTimeout is shorter than the daemon's default --idle-timeout
	// (2m), so that the client closes an idle connection before the
	// daemon does and seldom sends on one being closed.
	idleTimeout = 90 * time.Second
)

// Client is a connection to one daemon. It is safe for concurrent use;
// make one and share it. Close releases its idle connections.
type Client struct {
	base    string // scheme://host[/prefix], without a trailing slash
	token   string
	hc      *http.Client
	own     bool // hc is ours: Close closes its idle connections
	batch   int
	ns      string // Coalesce-Namespace, or "" to send none
	version string // Coalesce-Version, or "" to send none
}

// New returns a Client for the daemon at baseURL, such as
// "http://127.0.0.1:7700" (what its --ready-file holds). With
// Options.SocketPath, baseURL may be "".
func New(baseURL string, opts Options) (*Client, error) {
	if baseURL == "" && opts.SocketPath != "" {
		baseURL = "http://unix"
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://HOST:PORT, such as http://127.0.0.1:7700", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: it must have no query or fragment", baseURL)
	}
	if opts.HTTPClient != nil && opts.SocketPath != "" {
		return nil, errors.New("client: Options.HTTPClient and SocketPath are both set; set the socket in your client's transport, or drop HTTPClient")
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("client: Options.BatchSize is %d; it must be positive, or zero for %d", opts.BatchSize, defaultBatchSize)
	}
	if strings.ContainsAny(opts.Token, "\r\n") {
		return nil, errors.New("client: Options.Token contains a line break; strip the token file's trailing newline")
	}
	if err := checkScope("Options.Namespace", opts.Namespace, "Options.Version", opts.Version); err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), token: opts.Token, hc: opts.HTTPClient, batch: opts.BatchSize,
		ns: opts.Namespace, version: opts.Version}
	if c.batch == 0 {
		c.batch = defaultBatchSize
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = maxIdleConns
		t.MaxIdleConnsPerHost = maxIdleConns
		t.IdleConnTimeout = idleTimeout
		if path := opts.SocketPath; path != "" {
			var d net.Dialer
			t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			}
			t.Proxy = nil
		}
		c.hc, c.own = &http.Client{Transport: t}, true
	}
	return c, nil
}

// Close closes the Client's idle connections. A Client given its own
// Options.HTTPClient leaves it alone. The Client stays usable.
func (c *Client) Close() {
	if c.own {
		c.hc.CloseIdleConnections()
	}
}

// Get returns input's result, computing it once however many callers of
// any daemon client ask at the same time. It blocks until the result is
// ready or ctx ends. Result.Source says how the daemon served it: Hit
// from its memory, Loaded from a tier behind it (its disk, or another
// daemon through Redis), Joined or Computed.
func (c *Client) Get(ctx context.Context, input []byte) (coalesce.Result, error) {
	resp, err := c.compute(ctx, input, false)
	if err != nil {
		return coalesce.Result{}, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return coalesce.Result{}, unexpected(resp)
	}
	return readResult(resp)
}

// compute sends POST /v1/compute; the caller closes the body.
func (c *Client) compute(ctx context.Context, input []byte, async bool) (*http.Response, error) {
	req, err := c.request(ctx, http.MethodPost, "/v1/compute", input)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if async {
		req.Header.Set("Prefer", "respond-async")
	}
	c.scope(req)
	return c.do(req)
}

// request makes a request to the daemon. A body is sent with a known
// length and is replayable.
func (c *Client) request(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil || method == http.MethodDelete {
		// A compute is idempotent: the same input has the same result,
		// coalesced with any computation in flight; so is a namespace's
		// delete. Saying so lets the transport resend it when a kept-alive
		// connection turns out to have been closed by the daemon (GETs it
		// resends anyway); a nil value is not sent.
		req.Header["Idempotency-Key"] = nil
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends req and returns a response of status 200 or 202; any other
// status is read into an *Error. A context that ended is reported as the
// context's error, wrapped.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Path, ctxErr)
		}
		return nil, fmt.Errorf("client: %w", err)
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		return resp, nil
	}
	defer closeBody(resp)
	return nil, responseError(resp)
}

// readResult reads a 200 with a result.
func readResult(resp *http.Response) (coalesce.Result, error) {
	src, err := parseSource(resp.Header.Get("Coalesce-Source"))
	if err != nil {
		return coalesce.Result{}, err
	}
	v, err := io.ReadAll(resp.Body)
	if err != nil {
		return coalesce.Result{}, fmt.Errorf("client: reading the result: %w", err)
	}
	return coalesce.Result{Value: v, Source: src}, nil
}

func parseSource(s string) (coalesce.Source, error) {
	for _, src := range []coalesce.Source{coalesce.Hit, coalesce.Joined, coalesce.Computed, coalesce.Loaded} {
		if s == src.String() {
			return src, nil
		}
	}
	return 0, fmt.Errorf("client: the response's Coalesce-Source is %q, not hit, joined, computed or loaded; is the base URL a coalesce daemon?", s)
}

// closeBody reads what is left of a small body before closing it, so that
// the connection goes back to the pool instead of being closed.
func closeBody(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// unexpected reports a success status the call does not expect.
func unexpected(resp *http.Response) error {
	return &Error{Status: resp.StatusCode, Message: "unexpected status for " + resp.Request.URL.Path}
}

// Stats is the daemon's GET /v1/stats: its Group's counters and the
// requests it holds.
type Stats struct {
	coalesce.Stats
	HTTPWaiters int64 // requests blocked waiting for a result
	AsyncKept   int   // respond-async computations kept alive for pollers
}

// Stats returns the daemon's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/stats", nil)
	if err != nil {
		return Stats{}, err
	}
	resp, err := c.do(req)
	if err != nil {
		return Stats{}, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return Stats{}, unexpected(resp)
	}
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Stats{}, fmt.Errorf("client: decoding /v1/stats: %w", err)
	}
	return st, nil
}
