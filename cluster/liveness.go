package cluster

import (
	"context"
	"os"
	"strconv"
	"time"
)

// refreshLoop keeps this node alive in Redis. A failed refresh is only
// counted: the next one may succeed before LivenessTTL runs out, and if
// none does, the worst outcome is that other nodes take this node's
// leases and compute too.
func (t *Tier) refreshLoop() {
	defer t.refresher.Done()
	tick := time.NewTicker(t.opts.LivenessRefresh)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
			ctx := context.Background()
			if err := t.twice(ctx, func() error { return t.refreshLiveness(ctx) }); err != nil {
				t.redisError("liveness refresh", err)
			}
		}
	}
}

func (t *Tier) refreshLiveness(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	host, _ := os.Hostname()
	who := host + " pid " + strconv.Itoa(os.Getpid())
	return t.client.Do(ctx, t.client.B().Set().Key(t.liveKey(t.node)).Value(who).Px(t.opts.LivenessTTL).Build()).Error()
}
