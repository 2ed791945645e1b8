package cluster

import (
	"strings"

	"github.com/coalesce-go/coalesce"
)

// keys are the Redis keys of one input.
type keys struct {
	// result holds the input's lease, result or error:
	// <prefix>r:<namespace>:<version>:{<4 hex digits>}<28 hex digits>.
	result string
	// fence is the counter the input's fencing tokens are drawn from,
	// shared by the inputs of one hash tag: <prefix>fence:{<4 hex digits>}.
	fence string
}

// keysOf names k's keys. The hash tag of the first 16 bits of the key
// puts the input and its fencing counter in one Redis Cluster slot (a
// script may touch only one), spreads inputs over all 16,384 slots, and
// bounds the counters at 65,536.
func (t *Tier) keysOf(k coalesce.TierKey) keys {
	hex := k.Key.String()
	var b strings.Builder
	b.Grow(len(t.opts.Prefix) + len(k.Namespace) + len(k.Version) + len(hex) + 8)
	t.writeNamespace(&b, k.Namespace)
	escape(&b, k.Version)
	b.WriteString(":{")
	b.WriteString(hex[:4])
	b.WriteByte('}')
	b.WriteString(hex[4:])
	return keys{result: b.String(), fence: t.opts.Prefix + "fence:{" + hex[:4] + "}"}
}

// writeNamespace writes what starts the result keys of a namespace:
// <prefix>r:<namespace>:, the version next.
func (t *Tier) writeNamespace(b *strings.Builder, namespace string) {
	b.WriteString(t.opts.Prefix)
	b.WriteString("r:")
	escape(b, namespace)
	b.WriteByte(':')
}

// escape writes s with the bytes that would make a key ambiguous or move
// its hash tag ('%', ':', braces) and any unprintable byte as %XX. The
// library allows only printable ASCII in names, so this is a safety net:
// the key's hash keeps inputs apart whatever the names.
func escape(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == ':' || c == '{' || c == '}' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

func (t *Tier) liveKey(node string) string { return t.opts.Prefix + "live:" + node }
func (t *Tier) secretKey() string          { return t.opts.Prefix + "secret" }
