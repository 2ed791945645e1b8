package cluster

import (
	"context"
	"time"
)

// maxRepairDelay caps the back-off between a clean-up's attempts.
const maxRepairDelay = 5 * time.Second

// repair runs op in the background until it succeeds, LeaseTTL passes, or
// the Tier closes: the clean-up of a round trip that failed but may have
// changed Redis (a lease taken, a result not written, a lease not given
// back). Until it succeeds, the other nodes' waiters could wait for a
// lease whose owner, alive, will never write it; past LeaseTTL the lease
// has lapsed anyway. Only round trips that may have reached Redis start a
// clean-up, so during an outage they are bounded by the computations in
// flight when it began.
func (t *Tier) repair(op func(ctx context.Context) error) {
	t.repairMu.Lock()
	if t.noRepairs {
		t.repairMu.Unlock()
		return
	}
	t.repairs.Add(1)
	t.repairMu.Unlock()
	go func() {
		defer t.repairs.Done()
		giveUp := time.Now().Add(t.opts.LeaseTTL)
		delay := t.opts.Timeout
		for {
			ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
			err := op(ctx)
			cancel()
			if err == nil || time.Now().Add(delay).After(giveUp) {
				return
			}
			select {
			case <-t.done:
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxRepairDelay)
		}
	}()
}
