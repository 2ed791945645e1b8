package cluster

import (
	"context"
	"time"
)

// repairAttempts and the doubling delay from Timeout bound a clean-up to
// about 15 Timeouts: long enough to ride out a blip, short enough that a
// Redis outage does not pile clean-ups up (each is a goroutine).
const repairAttempts = 4

// repair runs op in the background until it succeeds, the attempts run
// out, or the Tier closes: the clean-up of a round trip that failed but
// may have changed Redis (a lease taken, a result not written).
func (t *Tier) repair(op func(ctx context.Context) error) {
	if t.closed() {
		return
	}
	t.repairs.Add(1)
	go func() {
		defer t.repairs.Done()
		delay := t.opts.Timeout
		for range repairAttempts {
			ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
			err := op(ctx)
			cancel()
			if err == nil {
				return
			}
			select {
			case <-t.done:
				return
			case <-time.After(delay):
			}
			delay *= 2
		}
	}()
}
