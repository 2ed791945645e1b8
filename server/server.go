package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalesce-go/coalesce"
)

// Config configures a Server. The zero value of every field is a documented
// default.
type Config struct {
	// MaxBatchItems bounds the inputs of one batch request. Zero means 1024.
	MaxBatchItems int

	// MaxWaiters bounds the requests blocked waiting for a result at once
	// (blocking computes and batches); beyond it a request gets 503
	// too_many_waiters with Retry-After. Zero means 10,000.
	MaxWaiters int

	// MaxWait bounds how long a blocking request waits, whatever its
	// Prefer: wait asks; zero means no bound beyond the Group's TaskTimeout
	// and the client's connection.
	MaxWait time.Duration

	// MaxAsync bounds the respond-async requests whose results are still
	// being computed; beyond it respond-async gets 503 overloaded. Zero
	// means 10,000.
	MaxAsync int

	// AsyncTimeout bounds how long the server keeps a respond-async
	// computation alive for a client that may poll it. Zero means 5 minutes.
	AsyncTimeout time.Duration

	// Token, if set, is the bearer token every request but /healthz and
	// /readyz must carry (Authorization: Bearer TOKEN).
	Token string

	// Logger receives one line per failed request and per executor failure.
	// Nil means slog.Default().
	Logger *slog.Logger

	// Checks are the health checks of what the Group depends on beyond
	// itself (a disk tier, a Redis), by name: /readyz reports each failing
	// one, and /metrics exports coalesce_check_ok{check=NAME}. A failing
	// check degrades the service, it does not stop it: the Group serves
	// from memory and computes, so /readyz still answers 200.
	Checks map[string]func() error

	// Collectors are exported on /metrics beside the Server's own: the
	// tiers' statistics, say.
	Collectors []prometheus.Collector

	// Tiers, by name, return the statistics of the tiers behind the
	// Group's memory (a struct of counters, encoded as JSON): GET
	// /v1/status reports them, and the status page shows them.
	Tiers map[string]func() any

	// DeleteNamespace, if set, deletes a namespace's results from the
	// tiers (every version if version is "") and returns how many it
	// deleted; DELETE /v1/namespaces/{name} calls it after forgetting the
	// namespace's results in memory. Without it, that route forgets the
	// memory's only.
	DeleteNamespace func(namespace, version string) (int64, error)
}

const (
	defaultMaxBatchItems = 1024
	defaultMaxWaiters    = 10000
	defaultMaxAsync      = 10000
	defaultAsyncTimeout  = 5 * time.Minute
	// limitCount bounds the count fields, so that a typo fails clearly.
	limitCount = 1 << 24
)

func (c Config) withDefaults() (Config, error) {
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxBatchItems", c.MaxBatchItems}, {"MaxWaiters", c.MaxWaiters}, {"MaxAsync", c.MaxAsync}} {
		if f.v < 0 || f.v > limitCount {
			return c, fmt.Errorf("server: Config.%s is %d; it must be from 1 to %d, or zero for the default", f.name, f.v, limitCount)
		}
	}
	if c.MaxWait < 0 || c.AsyncTimeout < 0 {
		return c, fmt.Errorf("server: Config.MaxWait %v and AsyncTimeout %v must not be negative", c.MaxWait, c.AsyncTimeout)
	}
	if c.MaxBatchItems == 0 {
		c.MaxBatchItems = defaultMaxBatchItems
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = defaultMaxWaiters
	}
	if c.MaxAsync == 0 {
		c.MaxAsync = defaultMaxAsync
	}
	if c.AsyncTimeout == 0 {
		c.AsyncTimeout = defaultAsyncTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Server answers the HTTP API in front of a coalesce.Group. It is an
// http.Handler and safe for concurrent use; Close ends the respond-async
// computations it keeps alive. The Group stays the caller's: the Server
// never closes it.
type Server struct {
	g       *coalesce.Group
	def     *coalesce.Namespace // for requests that name none
	cfg     Config
	maxIn   int
	mux     *http.ServeMux
	waiters atomic.Int64
	async   *asyncTable
	metrics *metrics
	ready   atomic.Bool
}

// New returns a Server for g.
func New(g *coalesce.Group, cfg Config) (*Server, error) {
	if g == nil {
		return nil, errors.New("server: New needs a Group made by coalesce.New")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	def, err := g.Namespace("", "")
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{g: g, def: def, cfg: cfg, maxIn: g.Options().MaxInputSize}
	s.async = newAsyncTable(g, cfg.MaxAsync, cfg.AsyncTimeout, cfg.Logger)
	s.metrics = newMetrics(g)
	if err := s.metrics.watchExtra(cfg.Checks, cfg.Collectors); err != nil {
		return nil, fmt.Errorf("server: Config.Collectors: %w", err)
	}
	s.ready.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/compute", s.compute)
	mux.HandleFunc("POST /v1/compute/batch", s.batch)
	mux.HandleFunc("GET /v1/results/{key}", s.result)
	mux.HandleFunc("DELETE /v1/namespaces/{name}", s.deleteNamespace)
	mux.HandleFunc("GET /v1/stats", s.stats)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	s.routeStatus(mux) // GET /, GET /v1/status, and the server's gauges in /metrics
	s.mux = mux
	return s, nil
}

// SetReady sets what /readyz answers: a daemon shutting down turns it off
// first, so that a load balancer stops sending before requests fail.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Close cancels the respond-async computations the Server keeps alive and
// waits for their goroutines.
func (s *Server) Close() { s.async.close() }

// ServeHTTP checks the token, then routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token != "" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !s.authorized(r) {
		writeError(w, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "missing or wrong bearer token; send Authorization: Bearer <token>"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(s.cfg.Token)) == 1
}

// readInput reads a request body of at most the Group's MaxInputSize.
func (s *Server) readInput(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeInputTooLarge,
			Message: fmt.Sprintf("the body is %d bytes; the limit is %d", r.ContentLength, limit)}
	}
	// A body whose length is declared is read into a buffer of that size
	// at once, rather than grown by io.ReadAll.
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 {
		body = make([]byte, n)
		// net/http's body ends at the declared length.
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeInputTooLarge,
			Message: fmt.Sprintf("the body is over the limit of %d bytes", limit)}
	case err != nil:
		return nil, badRequest("reading the body: %v", err)
	}
	return body, nil
}

// enterWait counts a request that is about to block, or refuses it.
func (s *Server) enterWait(n int) *apiError {
	if s.waiters.Add(int64(n)) > int64(s.cfg.MaxWaiters) {
		s.waiters.Add(-int64(n))
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeTooManyWaiters,
			Message: fmt.Sprintf("%d requests are already waiting for results (the server's limit); retry after the Retry-After delay", s.cfg.MaxWaiters), RetryAfter: retryAfterOverloaded}
	}
	return nil
}

func (s *Server) leaveWait(n int) { s.waiters.Add(-int64(n)) }

// waitContext bounds a blocking wait by Prefer: wait and Config.MaxWait.
func (s *Server) waitContext(ctx context.Context, p preferences) (context.Context, context.CancelFunc, time.Duration) {
	d := p.wait
	if s.cfg.MaxWait > 0 && (d == 0 || d > s.cfg.MaxWait) {
		d = s.cfg.MaxWait
	}
	if d == 0 {
		return ctx, func() {}, 0
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, d
}

// The values of the result headers, made once: a hit's response then
// allocates only its key's text (the header map is net/http's own).
var (
	contentTypeOctet = []string{"application/octet-stream"}
	statusBySource   = map[coalesce.Source][]string{
		coalesce.Hit:      {"coalesce; hit"},
		coalesce.Joined:   {"coalesce; fwd=miss; collapsed"},
		coalesce.Computed: {"coalesce; fwd=miss; stored"},
		coalesce.Loaded:   {"coalesce; hit; detail=loaded"},
	}
	sourceBySource = map[coalesce.Source][]string{
		coalesce.Hit:      {"hit"},
		coalesce.Joined:   {"joined"},
		coalesce.Computed: {"computed"},
		coalesce.Loaded:   {"loaded"},
	}
)

// cacheStatus is the Cache-Status header (RFC 9211) for how a result was
// served.
func cacheStatus(src coalesce.Source) string {
	if v, ok := statusBySource[src]; ok {
		return v[0]
	}
	return "coalesce; fwd=miss; stored"
}

// The headers of a result, in canonical form so that they can be set in
// the map directly.
const (
	headerKey       = "Coalesce-Key"
	headerSource    = "Coalesce-Source"
	headerNamespace = "Coalesce-Namespace"
	headerVersion   = "Coalesce-Version"
)

// scope is the namespace a request names with Coalesce-Namespace and
// Coalesce-Version, or the default one.
func (s *Server) scope(r *http.Request) (*coalesce.Namespace, *apiError) {
	ns, v := r.Header[headerNamespace], r.Header[headerVersion]
	if len(ns) == 0 && len(v) == 0 {
		return s.def, nil
	}
	if len(ns) > 1 || len(v) > 1 {
		return nil, &apiError{Status: http.StatusBadRequest, Code: codeBadNamespace,
			Message: "send Coalesce-Namespace and Coalesce-Version at most once each"}
	}
	var name, version string
	if len(ns) == 1 {
		name = ns[0]
	}
	if len(v) == 1 {
		version = v[0]
	}
	n, err := s.g.Namespace(name, version)
	if err != nil {
		return nil, errorOf(err)
	}
	return n, nil
}

// writeResult writes a result. net/http adds Content-Length itself, since
// the whole body is written before the handler returns.
func writeResult(w http.ResponseWriter, key coalesce.Key, r coalesce.Result) {
	h := w.Header()
	h["Content-Type"] = contentTypeOctet
	h["Cache-Status"] = statusBySource[r.Source]
	h[headerSource] = sourceBySource[r.Source]
	h[headerKey] = []string{key.String()}
	w.WriteHeader(http.StatusOK)
	w.Write(r.Value)
}

// compute is POST /v1/compute: the body is the input, the response the
// result (blocking), or with Prefer: respond-async, the result if cached
// and otherwise 202 with the key to poll.
func (s *Server) compute(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ns, aerr := s.scope(r)
	if aerr != nil {
		s.fail(w, r, aerr, nil)
		return
	}
	input, aerr := s.readInput(w, r, int64(s.maxIn))
	if aerr != nil {
		s.fail(w, r, aerr, nil)
		return
	}
	// Hits first: no waiter to count, no context to make, no Prefer to
	// read; they are most requests, and this is their whole path.
	res, key, hit, err := ns.Lookup(input)
	if err != nil {
		s.fail(w, r, errorOf(err), err)
		return
	}
	if hit {
		writeResult(w, key, res)
		s.metrics.observe("hit", time.Since(start))
		return
	}
	p := parsePrefer(r.Header)
	if p.async {
		s.computeAsync(w, r, ns, key, input, p)
		return
	}
	if aerr := s.enterWait(1); aerr != nil {
		s.fail(w, r, aerr, nil)
		return
	}
	defer s.leaveWait(1)
	// The request's context ends when the client disconnects: its waiter
	// leaves at once, and the computation is cancelled if it was the last.
	ctx, cancel, bound := s.waitContext(r.Context(), p)
	defer cancel()
	res, err = ns.Get(ctx, input)
	if err != nil {
		if bound > 0 && ctx.Err() != nil && r.Context().Err() == nil {
			s.fail(w, r, &apiError{Status: http.StatusGatewayTimeout, Code: codeWaitExceeded,
				Message: fmt.Sprintf("no result within the %v wait; retry, or send Prefer: respond-async and poll /v1/results/%s", bound, key)}, nil)
			return
		}
		s.fail(w, r, errorOf(err), err)
		s.metrics.observe("error", time.Since(start))
		return
	}
	writeResult(w, key, res)
	s.metrics.observe(res.Source.String(), time.Since(start))
}

// asyncAccepted is the body of a 202.
type asyncAccepted struct {
	Key     string `json:"key"`
	Started bool   `json:"started"` // this request queued the computation
	Status  string `json:"status"`  // "pending"
}

func (s *Server) computeAsync(w http.ResponseWriter, r *http.Request, ns *coalesce.Namespace, key coalesce.Key, input []byte, p preferences) {
	fu, err := ns.Start(input)
	if err != nil {
		s.fail(w, r, errorOf(err), err)
		return
	}
	if p.wait > 0 {
		// respond-async with wait: wait that long, then answer 202.
		ctx, cancel, _ := s.waitContext(r.Context(), p)
		_, _ = fu.Wait(ctx)
		cancel()
		if r.Context().Err() != nil {
			fu.Cancel() // the client has gone: it will not poll
			return
		}
	}
	select {
	case <-fu.Done():
		res, err := fu.Poll()
		if err != nil {
			s.fail(w, r, errorOf(err), err)
			return
		}
		writeResult(w, key, res)
		return
	default:
	}
	if aerr := s.async.track(key, fu); aerr != nil {
		fu.Cancel()
		s.fail(w, r, aerr, nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Location", "/v1/results/"+key.String())
	h.Set("Preference-Applied", "respond-async")
	h.Set(headerKey, key.String())
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(asyncAccepted{Key: key.String(), Started: fu.First(), Status: "pending"})
}

// result is GET /v1/results/KEY: 200 with the result if memory or a tier
// keeps it (a disk after a restart: Coalesce-Source loaded), 202 while it
// is being computed, the error of a failed computation (respond-async,
// for a while after it failed; or kept by a tier), or 404.
func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	key, err := coalesce.ParseKey(r.PathValue("key"))
	if err != nil {
		s.fail(w, r, badRequest("%v", err), nil)
		return
	}
	ns, aerr := s.scope(r)
	if aerr != nil {
		s.fail(w, r, aerr, nil)
		return
	}
	st, res, err := ns.FindKey(r.Context(), key)
	if err != nil && r.Context().Err() != nil {
		return // the client left
	}
	if err != nil {
		s.fail(w, r, errorOf(err), nil)
		return
	}
	if st == coalesce.Ready {
		writeResult(w, key, res)
		return
	}
	// A respond-async computation that has just ended is out of the
	// Group's table before the server has recorded how it ended: until
	// then it is still pending here, not 404.
	pending, err := s.async.outcome(key)
	if err != nil {
		s.fail(w, r, errorOf(err), nil)
		return
	}
	if st == coalesce.Pending || pending {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Retry-After", "1")
		h.Set(headerKey, key.String())
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(asyncAccepted{Key: key.String(), Status: "pending"})
		return
	}
	s.fail(w, r, &apiError{Status: http.StatusNotFound, Code: codeNotFound,
		Message: "no result for this key is cached or being computed; POST the input to /v1/compute"}, nil)
}

// deleteNamespace is DELETE /v1/namespaces/{name}[?version=V]: the
// namespace's results (of every version, or of V) are no longer served,
// from memory at once, and are deleted from the tiers. "_" names the
// default namespace, whose name is empty.
func (s *Server) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "_" {
		name = ""
	}
	version := r.URL.Query().Get("version")
	n, err := s.g.Namespace(name, version)
	if err != nil {
		s.fail(w, r, errorOf(err), nil)
		return
	}
	if version == "" {
		s.g.ForgetNamespace(name)
	} else {
		n.Forget()
	}
	var deleted int64
	if s.cfg.DeleteNamespace != nil {
		if deleted, err = s.cfg.DeleteNamespace(name, version); err != nil {
			s.fail(w, r, &apiError{Status: http.StatusInternalServerError, Code: codeTierFailed,
				Message: "the results were forgotten in memory, but deleting them from the tiers failed: " + err.Error()}, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Namespace string `json:"namespace"`
		Version   string `json:"version,omitempty"`
		Deleted   int64  `json:"deleted"`
	}{name, version, deleted})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	st := s.g.Stats()
	json.NewEncoder(w).Encode(struct {
		coalesce.Stats
		HTTPWaiters int64 `json:"HTTPWaiters"`
		AsyncKept   int   `json:"AsyncKept"`
	}{st, s.waiters.Load(), s.async.len()})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "shutting down\n")
		return
	}
	var failing []string
	for name, check := range s.cfg.Checks {
		if err := check(); err != nil {
			failing = append(failing, name+": "+err.Error())
		}
	}
	if len(failing) == 0 {
		io.WriteString(w, "ready\n")
		return
	}
	sort.Strings(failing)
	io.WriteString(w, "ready, degraded (serving from memory and computing):\n"+strings.Join(failing, "\n")+"\n")
}

// fail writes e and logs the request; cause, if set, is the error behind
// it, logged in full (a panic's value and stack go to the log only).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *apiError, cause error) {
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code}
	if cause != nil {
		attrs = append(attrs, "error", cause.Error())
		var pe *coalesce.PanicError
		if errors.As(cause, &pe) {
			attrs = append(attrs, "stack", string(pe.Stack))
		}
	}
	level := slog.LevelInfo
	if e.Status >= 500 && e.Status != 503 {
		level = slog.LevelWarn
	}
	s.cfg.Logger.Log(r.Context(), level, "request failed", attrs...)
	writeError(w, e)
}

// mediaType is the request's Content-Type without parameters, lowercased.
func mediaType(r *http.Request) string {
	t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return t
}
