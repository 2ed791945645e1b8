package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coalesce-go/coalesce"
)

// Pending is the handle Start returns: the key of a result that may not be
// ready, to poll without sending the input again. The daemon keeps the
// computation alive for pollers (up to its async timeout, 5 minutes by
// default), whether or not anyone polls. A Pending is safe for concurrent
// use.
type Pending struct {
	// Key names the input's result on the daemon (GET /v1/results/KEY).
	Key coalesce.Key
	// Started reports whether this Start queued the computation, rather
	// than finding it cached or in flight.
	Started bool

	c   *Client
	res atomic.Pointer[coalesce.Result] // set once the result is known
}

// Start asks for input's result without waiting for it (Prefer:
// respond-async). If the result is cached the Pending is already done;
// otherwise the daemon loads it from a tier behind its memory, computes
// it, or joins the computation in flight, and Poll or Wait collect it.
// The Pending polls in the namespace and version of the Client that
// made it.
func (c *Client) Start(ctx context.Context, input []byte) (*Pending, error) {
	resp, err := c.compute(ctx, input, true)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	p := &Pending{c: c}
	switch resp.StatusCode {
	case http.StatusOK:
		if p.Key, err = coalesce.ParseKey(resp.Header.Get("Coalesce-Key")); err != nil {
			return nil, fmt.Errorf("client: the result's Coalesce-Key header: %w", err)
		}
		res, err := readResult(resp)
		if err != nil {
			return nil, err
		}
		p.res.Store(&res)
		return p, nil
	case http.StatusAccepted:
		var body struct {
			Key     string `json:"key"`
			Started bool   `json:"started"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&body); err != nil {
			return nil, fmt.Errorf("client: decoding the 202 of POST /v1/compute: %w", err)
		}
		if p.Key, err = coalesce.ParseKey(body.Key); err != nil {
			return nil, fmt.Errorf("client: the 202's key: %w", err)
		}
		p.Started = body.Started
		return p, nil
	}
	return nil, unexpected(resp)
}

// Poll returns the result for key if the daemon has it, with Source Hit
// (Loaded if the daemon found it on its disk or in Redis: a key kept
// across the daemon's restart still finds its result);
// coalesce.ErrPending while it is being computed; or an *Error wrapping
// ErrNotFound if it is neither kept nor being computed. A computation
// that failed lately is reported with its error. The key is looked up in
// the Client's namespace and version only.
func (c *Client) Poll(ctx context.Context, key coalesce.Key) (coalesce.Result, error) {
	res, _, err := c.poll(ctx, key)
	return res, err
}

// poll is Poll, and also returns a 202's Retry-After.
func (c *Client) poll(ctx context.Context, key coalesce.Key) (coalesce.Result, time.Duration, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/results/"+key.String(), nil)
	if err != nil {
		return coalesce.Result{}, 0, err
	}
	c.scope(req)
	resp, err := c.do(req)
	if err != nil {
		return coalesce.Result{}, 0, err
	}
	defer closeBody(resp)
	if resp.StatusCode == http.StatusAccepted {
		return coalesce.Result{}, retryAfter(resp.Header), coalesce.ErrPending
	}
	res, err := readResult(resp)
	return res, 0, err
}

// Poll returns the result if it is ready, without waiting: coalesce.ErrPending
// while it is being computed, or the computation's error. The result's
// Source is Computed if this Pending started the computation, Joined if
// it joined one in flight, and Hit if Start found it cached. (A started
// computation that the daemon answered from a tier behind its memory,
// its disk say, is reported Computed too: the daemon's answer to a poll
// does not tell them apart.)
func (p *Pending) Poll(ctx context.Context) (coalesce.Result, error) {
	res, _, err := p.poll(ctx)
	return res, err
}

func (p *Pending) poll(ctx context.Context) (coalesce.Result, time.Duration, error) {
	if r := p.res.Load(); r != nil {
		return *r, 0, nil
	}
	res, after, err := p.c.poll(ctx, p.Key)
	if err != nil {
		return res, after, err
	}
	res.Source = coalesce.Joined
	if p.Started {
		res.Source = coalesce.Computed
	}
	p.res.Store(&res)
	return res, 0, nil
}

// The back-off of Wait: a short computation is collected soon after it
// ends, a long one is polled no more often than the daemon asks.
const (
	firstPoll = 10 * time.Millisecond
	// defaultPollCap bounds the interval when a 202 has no Retry-After.
	defaultPollCap = time.Second
)

// Wait polls until the result is ready, the computation fails, or ctx
// ends. The interval between polls starts at 10 ms and doubles up to the
// 202's Retry-After (1 s from the daemon, and never more than a minute).
// A Wait cut short by ctx leaves the computation running on the daemon:
// call Wait again later.
func (p *Pending) Wait(ctx context.Context) (coalesce.Result, error) {
	delay := firstPoll
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		res, after, err := p.poll(ctx)
		if !errors.Is(err, coalesce.ErrPending) {
			return res, err
		}
		limit := after
		if limit <= 0 {
			limit = defaultPollCap
		}
		d := min(delay, limit)
		delay = min(2*delay, limit)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return coalesce.Result{}, fmt.Errorf("client: waiting for %s: %w", p.Key, ctx.Err())
		case <-timer.C:
		}
	}
}
