package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/disk"
	"github.com/coalesce-go/coalesce/server"
	"github.com/coalesce-go/coalesce/server/executor"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run the daemon: one HTTP service that every agent sends its requests to",
		run:     runServe,
	})
}

// serveFlags are the daemon's settings. Every flag can also be set from the
// environment as COALESCE_ and the flag's name in capitals with dashes as
// underscores (COALESCE_CACHE_MIB=512); a flag on the command line wins.
type serveFlags struct {
	addr, socket, tokenFile, readyFile, pprofAddr string
	exec, upstream                                string
	execWorkers                                   int
	execRetry                                     bool
	upstreamTimeout                               time.Duration
	upstreamConns                                 int
	demoMin, demoMax                              time.Duration

	workers, queue, maxInput, maxResult, maxBatch, maxWaiters, maxHeader int
	cacheMiB                                                             int64
	taskTimeout, maxWait, readTimeout, writeTimeout, idleTimeout, grace  time.Duration
	logFormat, logLevel                                                  string

	// The disk tier (docs/STORE.md) and the version of the computation.
	dataDir, syncMode, version, namespaceTTL string
	diskMaxGiB                               float64

	// The cluster tier on Redis (docs/CLUSTER.md).
	redis, redisPrefix string
	redisFailClosed    bool
	redisLiveness      time.Duration
	redisWait          time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("coalesce serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:7700", "TCP address to listen on; \"\" for none (then --socket is needed). An address beyond loopback needs a token")
	fs.StringVar(&f.socket, "socket", "", "also listen on this Unix socket (created with mode 0600)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token every request must carry (or set COALESCE_TOKEN)")
	fs.StringVar(&f.readyFile, "ready-file", "", "write the listening URL to this file once serving (for scripts and tests)")
	fs.StringVar(&f.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback address (off by default)")
	fs.StringVar(&f.exec, "exec", "", "compute with a pool of worker processes running this command line (docs/WORKER-PROTOCOL.md)")
	fs.IntVar(&f.execWorkers, "exec-workers", 0, "worker processes for --exec (0 = GOMAXPROCS)")
	fs.BoolVar(&f.execRetry, "exec-retry", false, "retry a task once on another worker when its worker crashed (only for functions safe to run twice)")
	fs.StringVar(&f.upstream, "upstream", "", "compute by POSTing each input to this HTTP URL")
	fs.DurationVar(&f.upstreamTimeout, "upstream-timeout", 30*time.Second, "bound on one upstream request")
	fs.IntVar(&f.upstreamConns, "upstream-conns", 64, "connections to the upstream at most")
	fs.DurationVar(&f.demoMin, "demo-min", 15*time.Millisecond, "the demo executor's shortest delay (the default executor: no --exec or --upstream)")
	fs.DurationVar(&f.demoMax, "demo-max", 30*time.Millisecond, "the demo executor's longest delay")
	fs.IntVar(&f.workers, "workers", 0, fmt.Sprintf("computations at once, 1 to %d (0 = GOMAXPROCS)", coalesce.LimitWorkers))
	fs.IntVar(&f.queue, "queue", 1024, fmt.Sprintf("distinct inputs waiting for a worker, 1 to %d; beyond it 503 overloaded", coalesce.LimitQueueSize))
	fs.Int64Var(&f.cacheMiB, "cache-mib", 1024, fmt.Sprintf("memory for results, MiB, 1 to %d", int64(coalesce.LimitCacheBytes)>>20))
	fs.IntVar(&f.maxInput, "max-input", 1<<20, "longest input accepted, bytes; beyond it 413")
	fs.IntVar(&f.maxResult, "max-result", 64<<10, "longest result cached, bytes (longer ones are delivered uncached)")
	fs.IntVar(&f.maxBatch, "max-batch", 1024, "inputs per batch request at most")
	fs.IntVar(&f.maxWaiters, "max-waiters", 10000, "requests blocked waiting for results at once; beyond it 503")
	fs.IntVar(&f.maxHeader, "max-header-bytes", 16<<10, "request header bytes at most")
	fs.DurationVar(&f.taskTimeout, "task-timeout", time.Minute, "bound on one computation; its waiters then get 504")
	fs.DurationVar(&f.maxWait, "max-wait", 0, "bound on a blocking request's wait (0 = the write timeout less 1s)")
	fs.DurationVar(&f.readTimeout, "read-timeout", 30*time.Second, "bound on reading a request, headers and body (against slow clients)")
	fs.DurationVar(&f.writeTimeout, "write-timeout", 2*time.Minute, "bound on a request from its headers to the end of its response")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 2*time.Minute, "keep-alive connections idle longer are closed")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "on SIGINT/SIGTERM, time for in-flight requests to finish before they are cancelled")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir(), `directory of the disk tier, which keeps every computed result across restarts and crashes; "none" for memory only`)
	fs.Float64Var(&f.diskMaxGiB, "disk-max-gib", 10, "disk space for results, GiB; the least recently used are evicted past it")
	fs.StringVar(&f.syncMode, "sync", "group", "when a result is durable: group (synced with others within a few ms) or always (synced before it is answered)")
	fs.StringVar(&f.version, "version", "", "version of the computation: hashed into every key, so bumping it retires every older result (a request may name another with Coalesce-Version)")
	fs.StringVar(&f.namespaceTTL, "namespace-ttl", "", "time to live of namespaces' results, as NAME=DURATION[,NAME=DURATION...] (\"\" names the default namespace: =1h)")
	fs.StringVar(&f.redis, "redis", "", "share results and computations with other daemons through this Redis (host:port, or redis://[user:password@]host:port[/db])")
	fs.StringVar(&f.redisPrefix, "redis-prefix", "coalesce:", "prefix of every Redis key, so that deployments can share a Redis")
	fs.BoolVar(&f.redisFailClosed, "redis-fail-closed", false, "answer 502 when Redis cannot be reached, instead of computing locally")
	fs.DurationVar(&f.redisLiveness, "redis-liveness", 3*time.Second, "a crashed daemon's computations are taken over by the others within this")
	fs.DurationVar(&f.redisWait, "redis-wait", 30*time.Second, "at start, keep trying to reach --redis for this long before giving up (0: try once)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: coalesce serve [flags]\n\nRuns the daemon (docs/SERVER.md). Every flag can also be set in the environment as\nCOALESCE_<FLAG> (COALESCE_CACHE_MIB=512, COALESCE_EXEC=...); the command line wins.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q; every setting is a flag", fs.Arg(0))
	}
	set := givenFlags(fs)
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		env := "COALESCE_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[fl.Name] && envErr == nil {
			if err := fl.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	})
	if envErr != nil {
		return f, envErr
	}
	return f, f.check()
}

// check bounds every value, with an error that says what is allowed.
func (f serveFlags) check() error {
	ints := []struct {
		name   string
		v, min int64
		max    int64
	}{
		{"--workers", int64(f.workers), 0, coalesce.LimitWorkers},
		{"--queue", int64(f.queue), 1, coalesce.LimitQueueSize},
		{"--cache-mib", f.cacheMiB, 1, coalesce.LimitCacheBytes >> 20},
		{"--max-input", int64(f.maxInput), 1, coalesce.LimitInputSize},
		{"--max-result", int64(f.maxResult), 1, coalesce.LimitResultSize},
		{"--max-batch", int64(f.maxBatch), 1, 1 << 20},
		{"--max-waiters", int64(f.maxWaiters), 1, 1 << 24},
		{"--max-header-bytes", int64(f.maxHeader), 1 << 10, 1 << 20},
		{"--exec-workers", int64(f.execWorkers), 0, 4096},
		{"--upstream-conns", int64(f.upstreamConns), 1, 1 << 16},
	}
	for _, c := range ints {
		if c.v < c.min || c.v > c.max {
			return fmt.Errorf("%s %d: allowed %d to %d", c.name, c.v, c.min, c.max)
		}
	}
	durs := []struct {
		name     string
		v        time.Duration
		zeroOK   bool
		min, max time.Duration
	}{
		{"--task-timeout", f.taskTimeout, true, time.Millisecond, 24 * time.Hour},
		{"--max-wait", f.maxWait, true, time.Millisecond, 24 * time.Hour},
		{"--read-timeout", f.readTimeout, false, time.Millisecond, time.Hour},
		{"--write-timeout", f.writeTimeout, false, time.Second, 24 * time.Hour},
		{"--idle-timeout", f.idleTimeout, false, time.Millisecond, 24 * time.Hour},
		{"--grace", f.grace, true, time.Millisecond, time.Hour},
		{"--upstream-timeout", f.upstreamTimeout, false, time.Millisecond, 24 * time.Hour},
		{"--redis-liveness", f.redisLiveness, false, 10 * time.Millisecond, time.Hour},
		{"--redis-wait", f.redisWait, true, time.Millisecond, time.Hour},
	}
	for _, d := range durs {
		if d.v == 0 && d.zeroOK {
			continue
		}
		if d.v < d.min || d.v > d.max {
			zero := ""
			if d.zeroOK {
				zero = ", or 0 for none"
			}
			return fmt.Errorf("%s %v: allowed %v to %v%s", d.name, d.v, d.min, d.max, zero)
		}
	}
	switch {
	case f.exec != "" && f.upstream != "":
		return errors.New("--exec and --upstream both given; choose one executor")
	case f.addr == "" && f.socket == "":
		return errors.New(`--addr "" and no --socket: nothing to listen on`)
	case f.logFormat != "text" && f.logFormat != "json":
		return fmt.Errorf("--log-format %q: allowed text or json", f.logFormat)
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return err
	}
	if f.dataDir == "" {
		return errors.New(`--data-dir "": give a directory, or "none" for memory only`)
	}
	if f.diskMaxGiB < 0.0625 || f.diskMaxGiB > 1<<20 {
		return fmt.Errorf("--disk-max-gib %v: allowed 0.0625 (64 MiB) to %d", f.diskMaxGiB, 1<<20)
	}
	if _, err := disk.ParseSyncMode(f.syncMode); err != nil {
		return fmt.Errorf("--sync %q: allowed group or always", f.syncMode)
	}
	if _, err := parseNamespaceTTL(f.namespaceTTL); err != nil {
		return err
	}
	return nil
}

// defaultDataDir is the disk tier's directory under the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache on Linux), or "none" where there
// is no such directory.
func defaultDataDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "none"
	}
	return filepath.Join(dir, "coalesce")
}

// parseNamespaceTTL parses --namespace-ttl.
func parseNamespaceTTL(s string) (map[string]time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]time.Duration{}
	for _, item := range strings.Split(s, ",") {
		name, d, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("--namespace-ttl: %q is not NAME=DURATION", item)
		}
		ttl, err := time.ParseDuration(d)
		if err != nil || ttl <= 0 || ttl > 100*365*24*time.Hour {
			return nil, fmt.Errorf("--namespace-ttl: %q: the duration must be positive, like 90s or 24h", item)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("--namespace-ttl: namespace %q given twice", name)
		}
		m[name] = ttl
	}
	return m, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: allowed debug, info, warn or error", s)
	}
	return l, nil
}

// serveHook lets tests see the daemon's address without a ready file.
var serveHook func(url string)

func runServe(args []string, stdout, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level, _ := parseLevel(f.logLevel)
	hopts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if f.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	}

	token, err := readToken(f.tokenFile)
	if err != nil {
		return err
	}
	if f.addr != "" && token == "" {
		if err := requireLoopback(f.addr); err != nil {
			return err
		}
	}
	if f.pprofAddr != "" {
		if err := requireLoopback(f.pprofAddr); err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
	}

	exec, what, err := newExecutor(f, log)
	if err != nil {
		return err
	}
	defer exec.Close()
	ttls, _ := parseNamespaceTTL(f.namespaceTTL)
	opts := coalesce.Options{
		Workers:       f.workers,
		QueueSize:     f.queue,
		CacheBytes:    f.cacheMiB << 20,
		MaxInputSize:  f.maxInput,
		MaxResultSize: f.maxResult,
		TaskTimeout:   f.taskTimeout,
		CloseGrace:    -1, // the daemon's own grace has passed when the Group closes
		Version:       f.version,
		NamespaceTTL:  ttls,
	}
	tiers, err := openTiers(f, log, &opts)
	if err != nil {
		return err
	}
	// Closed after the Group, whose last computations save into them.
	defer tiers.close()
	g, err := coalesce.New(exec.Compute, opts)
	if err != nil {
		return err
	}
	tiers.forgetWith(g, log)
	maxWait := f.maxWait
	if maxWait == 0 {
		maxWait = f.writeTimeout - time.Second
	}
	srv, err := server.New(g, server.Config{
		MaxBatchItems:   f.maxBatch,
		MaxWaiters:      f.maxWaiters,
		MaxWait:         maxWait,
		Token:           token,
		Logger:          log,
		Checks:          tiers.checks,
		Collectors:      tiers.collectors,
		Tiers:           tiers.stats,
		DeleteNamespace: tiers.deleteNamespace,
	})
	if err != nil {
		g.Close()
		return err
	}
	defer srv.Close()

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	if f.addr != "" {
		l, err := net.Listen("tcp", f.addr)
		if err != nil {
			g.Close()
			return fmt.Errorf("--addr %s: %w", f.addr, err)
		}
		listeners = append(listeners, l)
	}
	if f.socket != "" {
		l, err := listenUnix(f.socket)
		if err != nil {
			closeAll()
			g.Close()
			return err
		}
		listeners = append(listeners, l)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: min(f.readTimeout, 10*time.Second),
		ReadTimeout:       f.readTimeout,
		WriteTimeout:      f.writeTimeout,
		IdleTimeout:       f.idleTimeout,
		MaxHeaderBytes:    f.maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var pprofSrv *http.Server
	if f.pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		pprofSrv = &http.Server{Addr: f.pprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := pprofSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("pprof", "error", err)
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	serveErr := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
	}
	url := ""
	if f.addr != "" {
		url = "http://" + listeners[0].Addr().String()
	}
	log.Info("serving", "url", url, "socket", f.socket, "executor", what, "workers", g.Options().Workers,
		"cache_mib", f.cacheMiB, "token", token != "", "data_dir", f.dataDir, "sync", f.syncMode, "version", f.version)
	if f.readyFile != "" {
		ready := url
		if ready == "" {
			ready = "unix:" + f.socket
		}
		if err := os.WriteFile(f.readyFile, []byte(ready+"\n"), 0o644); err != nil {
			log.Error("writing --ready-file", "error", err)
		}
	}
	if serveHook != nil {
		serveHook(url)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", f.grace)
	case runErr = <-serveErr:
		log.Error("serving failed", "error", runErr)
	}
	stop()
	// Stop accepting and let in-flight requests finish within the grace;
	// then cancel what is left.
	srv.SetReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), f.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight after the grace; cancelling them", "error", err)
		hs.Close()
	}
	wg.Wait()
	if pprofSrv != nil {
		pprofSrv.Close()
	}
	srv.Close()
	gctx, gcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer gcancel()
	if err := g.Shutdown(gctx); err != nil {
		log.Warn("computations still running after shutdown; exiting without them", "error", err)
	}
	if f.socket != "" {
		os.Remove(f.socket)
	}
	log.Info("stopped", "stats", fmt.Sprintf("%+v", statsLine(g.Stats())))
	return runErr
}

func statsLine(st coalesce.Stats) map[string]any {
	return map[string]any{"requests": st.Requests, "hits": st.Hits, "joined": st.Joined, "computed": st.Computed, "errors": st.Errors}
}

// newExecutor builds the executor the flags ask for, and names it.
func newExecutor(f serveFlags, log *slog.Logger) (executor.Executor, string, error) {
	switch {
	case f.exec != "":
		argv, err := splitCommand(f.exec)
		if err != nil {
			return nil, "", fmt.Errorf("--exec: %w", err)
		}
		p, err := executor.NewProcess(executor.ProcessOptions{Command: argv, Workers: f.execWorkers, RetryOnCrash: f.execRetry,
			MaxFrameSize: max(f.maxInput, f.maxResult), Logger: log})
		if err != nil {
			return nil, "", fmt.Errorf("--exec: %w", err)
		}
		return p, "exec: " + f.exec, nil
	case f.upstream != "":
		u, err := executor.NewUpstream(executor.UpstreamOptions{URL: f.upstream, Timeout: f.upstreamTimeout, MaxConns: f.upstreamConns,
			MaxResponseSize: int64(f.maxResult) * 16})
		if err != nil {
			return nil, "", fmt.Errorf("--upstream: %w", err)
		}
		return u, "upstream: " + f.upstream, nil
	}
	d, err := executor.NewDemo(executor.DemoOptions{Min: f.demoMin, Max: f.demoMax})
	if err != nil {
		return nil, "", fmt.Errorf("--demo-min/--demo-max: %w", err)
	}
	return d, fmt.Sprintf("demo (%v-%v)", f.demoMin, f.demoMax), nil
}

// readToken reads the token from --token-file, or COALESCE_TOKEN.
func readToken(path string) (string, error) {
	if path == "" {
		return strings.TrimSpace(os.Getenv("COALESCE_TOKEN")), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--token-file %s is empty; put the token in it, or drop the flag", path)
	}
	return t, nil
}

// requireLoopback refuses an address that other machines could reach.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v; use HOST:PORT", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--addr %s is reachable beyond this machine; set a bearer token (--token-file or COALESCE_TOKEN) to listen there", addr)
}

// listenUnix listens on a Unix socket only its owner may use. A stale
// socket file left by a crash is replaced; any other file is not.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--socket %s exists and is not a socket; choose another path", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("--socket %s: another process is serving on it", path)
		}
		os.Remove(path)
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("--socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("--socket %s: %w", path, err)
	}
	return l, nil
}

// splitCommand splits a command line into words as a POSIX shell would for
// plain words, single and double quotes and backslashes; it expands
// nothing, so the executor runs exactly the program given.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("trailing backslash in %q", s)
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command line")
	}
	return words, nil
}
