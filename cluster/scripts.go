package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coalesce-go/coalesce"
	"github.com/redis/rueidis"
)

// An input's key holds one of three kinds of value, told apart by the
// first byte:
//
//	L<token>:<node>:<claim> a lease: node computes the input; token is
//	                        drawn from the input's fencing counter; claim
//	                        tells the node's claims apart
//	V<bytes>                the result
//	E<kind><node> <message> a failed computation's error, kept NegativeTTL
const (
	tagLease    = 'L'
	tagValue    = 'V'
	tagNegative = 'E'
)

// The kinds of negative entry, so that errors.Is sees through a remote
// error as far as this package can carry it.
const (
	negGeneric = 'e'
	negTimeout = 't'
	negPanic   = 'p'
)

// maxErrorMessage bounds the error text a negative entry carries.
const maxErrorMessage = 1024

// claimScript is the lease's SET NX, and the steal of a dead owner's
// lease, in one round trip: it returns the key's value if there is one
// (with its PTTL), and otherwise takes a lease with a new fencing token.
// ARGV[3] is a lease whose owner the caller found dead, or "": a key that
// still holds exactly that lease is taken over as if it were free, and a
// key whose lease changed meanwhile (the owner came back and finished, or
// someone else stole it) is left alone.
//
// KEYS[1] the input, KEYS[2] its fencing counter (same hash slot);
// ARGV[1] the caller's "<node>:<claim>", ARGV[2] the lease TTL in ms.
var claimScript = rueidis.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
if cur and (ARGV[3] == '' or cur ~= ARGV[3]) then
  return {0, cur, redis.call('PTTL', KEYS[1])}
end
local lease = 'L' .. redis.call('INCR', KEYS[2]) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], lease, 'PX', ARGV[2])
return {1, lease}
`)

// writeScript stores a computation's outcome if the writer still holds
// its lease, or if nobody does (the key is gone: the lease lapsed and
// nobody took it, so the result is as good as any). A key that holds
// another lease, or another outcome, means the writer was fenced out:
// the write is rejected, and returns 0. With ARGV[1] "" (a result
// promoted from a farther tier) any key but a result is overwritten.
// ARGV[4] "1" marks this write as a retry of one whose reply was lost: a
// key that already holds ARGV[2] is then taken for the first try's work.
//
// KEYS[1] the input; ARGV[1] the writer's lease, ARGV[2] the value,
// ARGV[3] its TTL in ms ("0": none), ARGV[4] "1" for a retry.
var writeScript = rueidis.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[4] == '1' and cur == ARGV[2] then return 1 end
if cur then
  if ARGV[1] == '' then
    if string.sub(cur, 1, 1) == 'V' then return 0 end
  elseif cur ~= ARGV[1] then
    return 0
  end
end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// releaseScript deletes the key if it still holds the caller's lease: a
// cancelled computation gives its input back at once.
var releaseScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// abandonScript deletes a lease that a claim may have taken although the
// claim's caller saw an error (its reply timed out, or its context ended
// in flight): without it the lease would stay, with its owner alive,
// until LeaseTTL. Only the claim's own lease matches ARGV[1]
// (":<node>:<claim>").
var abandonScript = rueidis.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 1) == 'L' and string.sub(cur, -#ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// deleteScript deletes a result or an error, never a lease: the lease's
// computation is told of the delete by the Group (its outcome is then not
// stored), and another node's computation is not interrupted.
var deleteScript = rueidis.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 1) ~= 'L' then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// ErrCorrupt is returned, wrapped, for a key under the Prefix that holds
// something this package did not write.
var ErrCorrupt = errors.New("cluster: a key under the prefix holds a value this package did not write")

// A RemoteError is a computation's failure on another node (or on this
// one, in an earlier flight), delivered to the waiters instead of a
// computation of their own for Options.NegativeTTL. It wraps
// coalesce.ErrTimeout when the computation timed out.
type RemoteError struct {
	// Node is the id of the node whose computation failed.
	Node string
	// Message is its error's text, cut at 1 KiB.
	Message string
	kind    byte
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("cluster: the computation failed on node %s: %s", e.Node, e.Message)
}

// Unwrap returns the library's sentinel the remote error stood for, if
// any.
func (e *RemoteError) Unwrap() error {
	if e.kind == negTimeout {
		return coalesce.ErrTimeout
	}
	return nil
}

// negativeEntry encodes err as the key's value.
func negativeEntry(node string, err error) string {
	kind := byte(negGeneric)
	var p *coalesce.PanicError
	var r *RemoteError
	switch {
	case errors.As(err, &r):
		// A remote error saved again (a farther tier's, say) keeps its origin.
		return string([]byte{tagNegative, r.kind}) + r.Node + " " + r.Message
	case errors.Is(err, coalesce.ErrTimeout):
		kind = negTimeout
	case errors.As(err, &p):
		kind = negPanic
	}
	msg := err.Error()
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	return string([]byte{tagNegative, kind}) + node + " " + msg
}

// decoded is what an input's key holds.
type decoded struct {
	tag   byte
	value []byte       // tagValue
	err   *RemoteError // tagNegative
	owner string       // tagLease: the node id
}

// decode parses a value read from an input's key.
func decode(key, s string) (decoded, error) {
	if s == "" {
		return decoded{}, fmt.Errorf("%w: %s is empty", ErrCorrupt, key)
	}
	switch s[0] {
	case tagValue:
		return decoded{tag: tagValue, value: []byte(s[1:])}, nil
	case tagLease:
		_, rest, ok := strings.Cut(s[1:], ":")
		owner, _, ok2 := strings.Cut(rest, ":")
		if ok && ok2 && owner != "" {
			return decoded{tag: tagLease, owner: owner}, nil
		}
	case tagNegative:
		if len(s) >= 2 {
			node, msg, ok := strings.Cut(s[2:], " ")
			if ok && node != "" {
				return decoded{tag: tagNegative, err: &RemoteError{Node: node, Message: msg, kind: s[1]}}, nil
			}
		}
	}
	q := s
	if len(q) > 16 {
		q = q[:16] + "..."
	}
	return decoded{}, fmt.Errorf("%w: %s holds %q; delete it, or choose another Options.Prefix", ErrCorrupt, key, q)
}
