package sim

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/client"
	"github.com/coalesce-go/coalesce/server"
)

// daemonDesign is this project's library behind its daemon: the Group of
// the coalesce design, with the same options and task, served by the
// daemon's own handler (server.New) with net/http on a loopback listener
// inside the simulator's process. The agents are the daemon's clients:
// each agent holds its own client.Client, as each of the user's agents is
// a separate program with its own connections, and sends every request as
// a POST /v1/compute over HTTP/1.1 keep-alive connections, one per request
// it has outstanding (so at most its share of InFlight).
//
// The difference between this design and coalesce is then what the process
// boundary costs a request: the client's encoding, the loopback TCP round
// trip, net/http's parsing on both sides and the handler. The daemon's own
// process is not simulated: both ends share the simulator's cores, as the
// agents and a local daemon share the user's laptop.
//
// Accounting: the daemon's Coalesce-Source header, which the client returns
// as Result.Source.
type daemonDesign struct {
	g     *coalesce.Group
	srv   *server.Server
	hs    *http.Server
	ln    *countingListener
	url   string
	serve sync.WaitGroup

	mu      sync.Mutex
	clients []*agentClient
	shared  func() (getFunc, error)
}

// agentClient is one agent's client; hc is set when the design made the
// client's http.Client and must close its connections.
type agentClient struct {
	c  *client.Client
	hc *http.Client
}

// daemonMaxInFlight bounds InFlight when the daemon design runs: every
// outstanding request holds a loopback connection, two file descriptors
// (the agent's end and the daemon's) and an ephemeral port, of which Linux
// has about 28,000 by default.
const daemonMaxInFlight = 10000

// The http.Server's limits are those of `coalesce serve` by default, so
// that its per-request costs (deadlines set on the connection) are paid
// here too, except that the write timeout and the daemon's wait bound
// (MaxWait, its write timeout less a second by default) never cut a
// request short: the simulated run's requests may wait as long as the
// in-process design's do.
const (
	daemonReadTimeout  = 30 * time.Second
	daemonWriteTimeout = 24 * time.Hour
	daemonIdleTimeout  = 2 * time.Minute
	daemonMaxHeader    = 16 << 10
)

func newDaemon(p designParams) (design, error) {
	g, err := coalesce.New(coalesce.Func(p.task), coalesceOptions(p))
	if err != nil {
		return nil, err
	}
	// Failed requests are counted by the replay and the first one's error
	// reported; a log line per failure would only break the progress bar.
	quiet := slog.New(slog.DiscardHandler)
	srv, err := server.New(g, server.Config{
		// The daemon's default, 10,000, would answer 503 to requests the
		// in-process design lets wait; Validate bounds InFlight below it.
		MaxWaiters: daemonMaxInFlight,
		Logger:     quiet,
	})
	if err != nil {
		g.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		g.Close()
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	d := &daemonDesign{
		g:   g,
		srv: srv,
		ln:  &countingListener{Listener: ln},
		url: "http://" + ln.Addr().String(),
		hs: &http.Server{
			Handler:           srv,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       daemonReadTimeout,
			WriteTimeout:      daemonWriteTimeout,
			IdleTimeout:       daemonIdleTimeout,
			MaxHeaderBytes:    daemonMaxHeader,
			ErrorLog:          log.New(io.Discard, "", 0),
		},
	}
	d.shared = sync.OnceValues(func() (getFunc, error) { return d.forAgent(-1, 1) })
	d.serve.Go(func() { d.hs.Serve(d.ln) }) // returns ErrServerClosed at close
	return d, nil
}

// get serves a request through a client shared by its callers, for those
// that are not an agent of the replay; the replay's agents use forAgent.
func (d *daemonDesign) get(ctx context.Context, input []byte) ([]byte, Kind, error) {
	get, err := d.shared()
	if err != nil {
		return nil, Miss, err
	}
	return get(ctx, input)
}

// forAgent makes the agent's client. The client's own transport keeps up
// to 100 idle connections, which is what an agent with a few requests
// outstanding uses unchanged; an agent given more slots than that gets a
// transport that keeps one per slot, as its author would configure it,
// rather than one that closes and reopens connections all run long.
func (d *daemonDesign) forAgent(_, slots int) (getFunc, error) {
	const clientIdle = 100 // client.New's own pool, see client.Options.HTTPClient
	ac := &agentClient{}
	var opts client.Options
	if slots > clientIdle {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		t.MaxIdleConns, t.MaxIdleConnsPerHost = slots, slots
		ac.hc = &http.Client{Transport: t}
		opts.HTTPClient = ac.hc
	}
	c, err := client.New(d.url, opts)
	if err != nil {
		return nil, err
	}
	ac.c = c
	d.mu.Lock()
	d.clients = append(d.clients, ac)
	d.mu.Unlock()
	return func(ctx context.Context, input []byte) ([]byte, Kind, error) {
		return kindOf(c.Get(ctx, input))
	}, nil
}

// connections returns the TCP connections the daemon has accepted.
func (d *daemonDesign) connections() int64 { return d.ln.accepted.Load() }

// close closes the agents' connections, then the server (which waits for
// the handlers still returning and closes the listener), the Server's
// async table and the Group.
func (d *daemonDesign) close() {
	d.mu.Lock()
	for _, ac := range d.clients {
		ac.c.Close()
		if ac.hc != nil {
			ac.hc.CloseIdleConnections()
		}
	}
	d.clients = nil
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.hs.Shutdown(ctx); err != nil {
		d.hs.Close() // every get has returned: nothing should be left
	}
	d.serve.Wait()
	d.srv.Close()
	d.g.Close()
}

// countingListener counts the connections it accepts, which shows whether
// the agents kept their connections alive.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}
