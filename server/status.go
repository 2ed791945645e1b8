package server

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/coalesce-go/coalesce"
)

// statusHTML is the page at GET /: one self-contained file, its script and
// style inline, so the daemon shows it with no network beyond itself. It
// polls GET /v1/stats and GET /v1/status every second.
//
//go:embed status.html
var statusHTML []byte

// routeStatus registers the status page (GET /) and the JSON it reads
// beside /v1/stats (GET /v1/status), and adds the Server's own gauges to
// /metrics.
func (s *Server) routeStatus(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("GET /v1/status", s.status)
	s.metrics.watchServer(s)
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// The page needs nothing from elsewhere; say so, so a browser refuses
	// anything an injected script might try to load.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(statusHTML)
}

// serverStatus is the body of GET /v1/status: what the Server sees beyond
// the Group's Stats.
type serverStatus struct {
	// Latency is the time from a compute request's arrival to its answer,
	// by source ("hit", "joined", "computed", "error"), since the Server
	// started; durations in nanoseconds, as in /v1/stats.
	Latency map[string]coalesce.Latency `json:"Latency"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(serverStatus{Latency: s.metrics.latencies()})
}
