package cluster

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/redis/rueidis"
)

// SecretSize is the size of the secret that SharedSecret returns, and
// coalesce.Options.Secret takes.
const SecretSize = 32

// SharedSecret returns the secret that keys the hash of inputs on every
// node of the cluster: drawn at random by the first node that asks, and
// stored in Redis (without a TTL) for the others. Nodes that hashed with
// different secrets would never share a result, though none would get a
// wrong one. Anyone who can read Redis can read the secret; they can also
// write results, so guard Redis itself.
func (t *Tier) SharedSecret(ctx context.Context) ([]byte, error) {
	if t.closed() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	fresh := make([]byte, SecretSize)
	rand.Read(fresh)
	key := t.secretKey()
	err := t.client.Do(ctx, t.client.B().Set().Key(key).Value(rueidis.BinaryString(fresh)).Nx().Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("%w: storing the shared secret: %v", ErrUnavailable, err)
	}
	s, err := t.client.Do(ctx, t.client.B().Get().Key(key).Build()).ToString()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the shared secret: %v", ErrUnavailable, err)
	}
	if len(s) != SecretSize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, not a %d-byte secret; delete it to draw a new one", ErrCorrupt, key, len(s), SecretSize)
	}
	return []byte(s), nil
}
