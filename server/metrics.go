package server

import (
	"net/http"
	"time"

	"github.com/coalesce-go/coalesce"
)

// metrics records what the Prometheus endpoint exports. (Being built: see
// issue #9; until then it records nothing and /metrics answers 501.)
type metrics struct{ g *coalesce.Group }

func newMetrics(g *coalesce.Group) *metrics { return &metrics{g: g} }

// observe records one answered request: kind is "hit", "joined",
// "computed" or "error"; d is from the request's arrival to its answer.
func (m *metrics) observe(kind string, d time.Duration) {}

func (m *metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "metrics are not built yet"})
	})
}
