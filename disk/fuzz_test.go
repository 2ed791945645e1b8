package disk

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord: whatever bytes are under a key, decoding never panics,
// and what it accepts re-encodes to the same bytes (so nothing it accepts
// was read other than as written).
func FuzzDecodeRecord(f *testing.F) {
	rk := appendRecordKey(nil, "ns", "v1", [16]byte{1, 2, 3})
	f.Add(rk, appendRecord(nil, rk, 7, 0, []byte("value")))
	f.Add(rk, appendRecord(nil, rk, 1, 1_700_000_000_000_000_000, bytes.Repeat([]byte{0xab}, 128)))
	f.Add(rk, appendRecord(nil, rk, 0, 0, nil))
	f.Add([]byte{}, []byte{})
	f.Add(rk, []byte{recordFormat, flagExpires, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, rk, raw []byte) {
		rec, err := decodeRecord(rk, raw)
		if err != nil {
			return
		}
		again := appendRecord(nil, rk, rec.gen, rec.expires, rec.value)
		if !bytes.Equal(again, raw) {
			t.Fatalf("accepted %x, which re-encodes to %x", raw, again)
		}
		ns, version, key, ok := parseRecordKey(rk)
		if ok && !bytes.Equal(appendRecordKey(nil, ns, version, key), rk) {
			t.Fatalf("record key %x parses to %q %q %x", rk, ns, version, key)
		}
	})
}

// FuzzParseKeys: the key parsers never panic, and accept only what the
// encoders make.
func FuzzParseKeys(f *testing.F) {
	rk := appendRecordKey(nil, "ns", "v1", [16]byte{1, 2, 3})
	f.Add(rk)
	f.Add(genKey(3, rk))
	f.Add([]byte{prefixRecord, 200})
	f.Fuzz(func(t *testing.T, k []byte) {
		if ns, version, key, ok := parseRecordKey(k); ok && !bytes.Equal(appendRecordKey(nil, ns, version, key), k) {
			t.Fatalf("record key %x accepted as %q %q %x", k, ns, version, key)
		}
		if gen, rk, ok := parseGenKey(k); ok && !bytes.Equal(genKey(gen, rk), k) {
			t.Fatalf("index key %x accepted as %d %x", k, gen, rk)
		}
		if _, err := decodeMeta(k); err == nil && !bytes.Equal(mustMeta(k).encode(), k) {
			t.Fatalf("meta %x accepted", k)
		}
	})
}

func mustMeta(b []byte) meta { m, _ := decodeMeta(b); return m }
