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
	// Tiers are the statistics of the tiers behind memory, by name
	// (Config.Tiers); Checks the error of each failing health check, ""
	// for a passing one (Config.Checks).
	Tiers  map[string]any    `json:"Tiers,omitempty"`
	Checks map[string]string `json:"Checks,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	st := serverStatus{Latency: s.metrics.latencies()}
	if len(s.cfg.Tiers) > 0 {
		st.Tiers = make(map[string]any, len(s.cfg.Tiers))
		for name, stats := range s.cfg.Tiers {
			st.Tiers[name] = stats()
		}
	}
	if len(s.cfg.Checks) > 0 {
		st.Checks = make(map[string]string, len(s.cfg.Checks))
		for name, check := range s.cfg.Checks {
			st.Checks[name] = ""
			if err := check(); err != nil {
				st.Checks[name] = err.Error()
			}
		}
	}
	json.NewEncoder(w).Encode(st)
}
