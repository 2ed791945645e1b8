package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// DeleteNamespace deletes from Redis the results and errors of a namespace,
// of every version or of version alone, never a lease (a computation in
// flight is not interrupted, and stores its outcome when it ends), and
// reports how many it deleted. It then publishes the deletion, so that
// every other node's Tier calls the function given to OnForget: their
// memory and disk copies of the namespace would otherwise go on being
// served. A node that is not connected at that moment misses the message
// and keeps its copies until they are evicted; a new Options.Version is
// the way to retire results that no node may serve again.
//
// It scans every Redis node for the namespace's keys (SCAN, so Redis
// goes on serving meanwhile), which takes time in proportion to the keys
// under the Prefix: an operator's command, not a request's.
func (t *Tier) DeleteNamespace(ctx context.Context, namespace, version string) (int64, error) {
	if t.closed() {
		return 0, ErrClosed
	}
	var b strings.Builder
	t.writeNamespace(&b, namespace)
	if version != "" {
		escape(&b, version)
		b.WriteByte(':')
	}
	pattern := globEscape(b.String()) + "*"
	var deleted int64
	for addr, node := range t.client.Nodes() {
		n, err := t.deleteMatching(ctx, node, pattern)
		deleted += n
		if err != nil {
			t.redisError("delete namespace", err)
			return deleted, fmt.Errorf("%w: deleting namespace %q on %s: %v", ErrUnavailable, namespace, addr, err)
		}
	}
	msg, _ := json.Marshal(forgetMessage{Node: t.node, Namespace: namespace, Version: version})
	pctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	if err := t.client.Do(pctx, t.client.B().Publish().Channel(t.forgetChannel()).Message(string(msg)).Build()).Error(); err != nil {
		t.redisError("delete namespace", err)
		return deleted, fmt.Errorf("%w: the namespace's %d results were deleted from Redis, but telling the other nodes failed: %v", ErrUnavailable, deleted, err)
	}
	t.stats.nsDeleted.Add(1)
	return deleted, nil
}

// deleteMatching scans one Redis node for keys matching pattern and
// deletes each with deleteScript (through the Tier's client, which routes
// it to the key's primary: node may be a replica).
func (t *Tier) deleteMatching(ctx context.Context, node rueidis.Client, pattern string) (int64, error) {
	var deleted int64
	var cursor uint64
	for {
		sctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
		e, err := node.Do(sctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		cancel()
		if err != nil {
			return deleted, err
		}
		if len(e.Elements) > 0 {
			execs := make([]rueidis.LuaExec, len(e.Elements))
			for i, k := range e.Elements {
				execs[i] = rueidis.LuaExec{Keys: []string{k}}
			}
			dctx, cancel := context.WithTimeout(ctx, t.opts.Timeout+time.Duration(len(execs))*time.Millisecond)
			for _, r := range deleteScript.ExecMulti(dctx, t.client, execs...) {
				n, err := r.AsInt64()
				if err != nil {
					cancel()
					return deleted, err
				}
				deleted += n
			}
			cancel()
		}
		if cursor = e.Cursor; cursor == 0 {
			return deleted, nil
		}
	}
}

// globEscape escapes the characters SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// forgetMessage is what DeleteNamespace publishes.
type forgetMessage struct {
	Node      string `json:"node"`
	Namespace string `json:"namespace"`
	Version   string `json:"version,omitempty"`
}

func (t *Tier) forgetChannel() string { return t.opts.Prefix + "forget" }

// OnForget sets the function called when another node's DeleteNamespace
// deleted a namespace (every version if version is ""): the caller
// forgets the namespace in its memory (Group.ForgetNamespace or
// Namespace.Forget) and deletes it from its other tiers. f runs on the
// Tier's subscriber goroutine, one call at a time; it is not called for
// this node's own deletions. Setting it again replaces it; nil stops the
// calls. The subscription is kept across Redis outages (messages
// published meanwhile are lost) and ends with Close.
func (t *Tier) OnForget(f func(namespace, version string)) {
	if f == nil {
		t.onForget.Store(nil)
		return
	}
	t.onForget.Store(&f)
	if t.closed() {
		return
	}
	t.subscribeOnce.Do(func() {
		t.refresher.Add(1)
		go t.subscribe()
	})
}

// subscribe receives the forget messages until Close, subscribing again
// after each lost connection.
func (t *Tier) subscribe() {
	defer t.refresher.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-t.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		err := t.client.Receive(ctx, t.client.B().Subscribe().Channel(t.forgetChannel()).Build(), func(m rueidis.PubSubMessage) {
			var msg forgetMessage
			if json.Unmarshal([]byte(m.Message), &msg) != nil || msg.Node == t.node {
				return
			}
			if f := t.onForget.Load(); f != nil {
				t.stats.nsForgotten.Add(1)
				(*f)(msg.Namespace, msg.Version)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.redisError("subscribe", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(t.opts.PollInterval):
		}
	}
}
