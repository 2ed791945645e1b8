package cluster

import (
	"log/slog"
	"sync"
	"time"
)

// errLogEvery is the rate of Redis error lines: an outage seen by every
// request must not flood the log.
const errLogEvery = 10 * time.Second

// errLog logs Redis errors, at most one line per errLogEvery with the
// count of those it left out.
type errLog struct {
	logger  *slog.Logger
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (t *Tier) redisError(op string, err error) {
	t.stats.redisErrs.Add(1)
	l := &t.errLog
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < errLogEvery {
		l.skipped++
		l.mu.Unlock()
		return
	}
	skipped := l.skipped
	l.last, l.skipped = now, 0
	l.mu.Unlock()
	l.logger.Warn("cluster: Redis error; this node computes on its own until Redis answers again", "op", op, "err", err, "errors_not_logged", skipped)
}
