package disk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The engine's key space:
//
//	'r' | len(ns) | ns | len(version) | version | key (16 bytes)  → record
//	'g' | generation (4 bytes, big-endian) | the record key less its 'r' → ""
//	'm'                                                           → counters
//
// The lengths make every namespace's keys, and every version's within it,
// one contiguous range that no other namespace's or version's key falls
// into (a namespace "a" cannot prefix "ab"'s keys), so one DeleteRange drops
// a namespace or a version whatever its size. The 'g' index orders records
// by the generation of their last use, which is the order of eviction.
const (
	prefixRecord = 'r'
	prefixGen    = 'g'
	prefixMeta   = 'm'
)

var metaKey = []byte{prefixMeta}

// Record values:
//
//	format (1) | flags (1) | generation (4, LE) | [expires (8, LE unix ns)] | value | CRC-32C (4, LE)
//
// The checksum covers the record key too, so that a record found under
// another key (a corrupted key, a misplaced block) is refused as well.
const (
	recordFormat  = 1
	flagExpires   = 1 << 0
	knownFlags    = flagExpires
	headerLen     = 6
	expiresLen    = 8
	checksumLen   = 4
	minRecordLen  = headerLen + checksumLen
	recordKeyBase = 1 + 1 + 1 + 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is a decoded record value; value aliases the encoded bytes.
type record struct {
	gen     uint32
	expires int64 // unix nanoseconds, 0 for none
	value   []byte
}

func checkName(what, s string) error {
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s of %d bytes; at most %d", ErrBadKey, what, len(s), MaxNameLen)
	}
	return nil
}

// nsPrefix returns the prefix of every record key of namespace ns.
func nsPrefix(ns string) []byte {
	b := make([]byte, 0, 2+len(ns))
	b = append(b, prefixRecord, byte(len(ns)))
	return append(b, ns...)
}

// versionPrefix returns the prefix of every record key of ns at version.
func versionPrefix(ns, version string) []byte {
	b := nsPrefix(ns)
	b = append(b, byte(len(version)))
	return append(b, version...)
}

func appendRecordKey(dst []byte, ns, version string, key [16]byte) []byte {
	dst = append(dst, prefixRecord, byte(len(ns)))
	dst = append(dst, ns...)
	dst = append(dst, byte(len(version)))
	dst = append(dst, version...)
	return append(dst, key[:]...)
}

// parseRecordKey splits a record key; ok is false for anything else.
func parseRecordKey(rk []byte) (ns, version string, key [16]byte, ok bool) {
	if len(rk) < recordKeyBase || rk[0] != prefixRecord {
		return "", "", key, false
	}
	n := int(rk[1])
	if 2+n+1 > len(rk) {
		return "", "", key, false
	}
	ns = string(rk[2 : 2+n])
	rest := rk[2+n:]
	v := int(rest[0])
	if 1+v+16 != len(rest) {
		return "", "", key, false
	}
	version = string(rest[1 : 1+v])
	copy(key[:], rest[1+v:])
	return ns, version, key, true
}

func genKey(gen uint32, rk []byte) []byte {
	b := make([]byte, 5, 5+len(rk)-1)
	b[0] = prefixGen
	binary.BigEndian.PutUint32(b[1:], gen)
	return append(b, rk[1:]...)
}

// parseGenKey returns the generation and the record key of an index key.
func parseGenKey(gk []byte) (uint32, []byte, bool) {
	if len(gk) < 5+recordKeyBase-1 || gk[0] != prefixGen {
		return 0, nil, false
	}
	rk := make([]byte, 0, len(gk)-4)
	rk = append(rk, prefixRecord)
	rk = append(rk, gk[5:]...)
	return binary.BigEndian.Uint32(gk[1:5]), rk, true
}

// prefixEnd returns the first key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no end below the maximum; not a key we make
}

func recordLen(valueLen int, expires int64) int {
	n := minRecordLen + valueLen
	if expires != 0 {
		n += expiresLen
	}
	return n
}

func appendRecord(dst, rk []byte, gen uint32, expires int64, value []byte) []byte {
	start := len(dst)
	var flags byte
	if expires != 0 {
		flags |= flagExpires
	}
	dst = append(dst, recordFormat, flags, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(dst[start+2:], gen)
	if expires != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(expires))
	}
	dst = append(dst, value...)
	sum := crc32.Update(crc32.Checksum(rk, castagnoli), castagnoli, dst[start:])
	return binary.LittleEndian.AppendUint32(dst, sum)
}

// decodeRecord checks and splits a record stored under rk. It never
// panics, whatever raw holds.
func decodeRecord(rk, raw []byte) (record, error) {
	if len(raw) < minRecordLen {
		return record{}, fmt.Errorf("%w: %d bytes, shorter than a header and checksum (%d)", ErrCorrupt, len(raw), minRecordLen)
	}
	body, tail := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	want := binary.LittleEndian.Uint32(tail)
	if got := crc32.Update(crc32.Checksum(rk, castagnoli), castagnoli, body); got != want {
		return record{}, fmt.Errorf("%w: checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if body[0] != recordFormat {
		return record{}, fmt.Errorf("%w: record format %d; this version reads %d", ErrCorrupt, body[0], recordFormat)
	}
	flags := body[1]
	if flags&^knownFlags != 0 {
		return record{}, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	r := record{gen: binary.LittleEndian.Uint32(body[2:6])}
	body = body[headerLen:]
	if flags&flagExpires != 0 {
		if len(body) < expiresLen {
			return record{}, fmt.Errorf("%w: expiry flag set but %d bytes left", ErrCorrupt, len(body))
		}
		r.expires = int64(binary.LittleEndian.Uint64(body))
		if r.expires == 0 {
			return record{}, fmt.Errorf("%w: expiry flag set with a zero time", ErrCorrupt)
		}
		body = body[expiresLen:]
	}
	r.value = body
	return r, nil
}

// meta is the store's persistent accounting, rewritten in every batch
// that changes it, so that it is exactly as durable as the records it
// counts and a restart needs no scan.
type meta struct {
	gen      uint32 // current generation
	genBytes int64  // bytes written in the current generation
	bytes    int64  // accounted size of the live records and their index
	entries  int64
}

const metaLen = 1 + 4 + 8 + 8 + 8 + checksumLen

func (m meta) encode() []byte {
	b := make([]byte, 0, metaLen)
	b = append(b, recordFormat)
	b = binary.LittleEndian.AppendUint32(b, m.gen)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.genBytes))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.bytes))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.entries))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaLen || b[0] != recordFormat ||
		crc32.Checksum(b[:metaLen-checksumLen], castagnoli) != binary.LittleEndian.Uint32(b[metaLen-checksumLen:]) {
		return meta{}, fmt.Errorf("%w: the store's counters (%d bytes) do not check", ErrCorrupt, len(b))
	}
	return meta{
		gen:      binary.LittleEndian.Uint32(b[1:]),
		genBytes: int64(binary.LittleEndian.Uint64(b[5:])),
		bytes:    int64(binary.LittleEndian.Uint64(b[13:])),
		entries:  int64(binary.LittleEndian.Uint64(b[21:])),
	}, nil
}
