package server

import (
	"github.com/coalesce-go/coalesce"

	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func frame(items ...string) []byte {
	var b []byte
	for _, it := range items {
		b = binary.BigEndian.AppendUint32(b, uint32(len(it)))
		b = append(b, it...)
	}
	return b
}

var testLimits = batchLimits{maxItems: 4, maxItemSize: 8}

func TestDecodeBinaryBatch(t *testing.T) {
	got, err := decodeBinaryBatch(bytes.NewReader(frame("a", "", "hello")), testLimits)
	if err != nil || len(got) != 3 || string(got[0]) != "a" || len(got[1]) != 0 || string(got[2]) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	for name, body := range map[string][]byte{
		"empty":           nil,
		"short length":    {0, 0},
		"short input":     append(frame("abc")[:5], 0),
		"item too large":  frame("123456789"),
		"too many":        frame("a", "b", "c", "d", "e"),
		"forged length":   {0xff, 0xff, 0xff, 0xff},
		"trailing header": append(frame("a"), 0, 0, 0),
	} {
		if _, err := decodeBinaryBatch(bytes.NewReader(body), testLimits); !errors.Is(err, errBatch) {
			t.Errorf("%s: %v, want errBatch", name, err)
		}
	}
}

func TestDecodeJSONBatch(t *testing.T) {
	got, err := decodeJSONBatch(strings.NewReader(`{"inputs":["YQ==",""]}`), testLimits)
	if err != nil || len(got) != 2 || string(got[0]) != "a" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, body := range []string{``, `{}`, `{"inputs":[]}`, `{"inputs":["!!"]}`, `{"inputs":["YQ=="]} {}`,
		`{"inputs":["YQ==","YQ==","YQ==","YQ==","YQ=="]}`, `{"inputs":["MTIzNDU2Nzg5"]}`, `{"input":["YQ=="]}`, `[1]`} {
		if _, err := decodeJSONBatch(strings.NewReader(body), testLimits); !errors.Is(err, errBatch) {
			t.Errorf("%s: %v, want errBatch", body, err)
		}
	}
}

func FuzzDecodeBinaryBatch(f *testing.F) {
	f.Add(frame("a", "bb"))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		ins, err := decodeBinaryBatch(bytes.NewReader(body), testLimits)
		if err != nil {
			return
		}
		if !bytes.Equal(frame(toStrings(ins)...), body) {
			t.Fatalf("decoded %q does not re-encode to the body", ins)
		}
	})
}

func FuzzDecodeJSONBatch(f *testing.F) {
	f.Add(`{"inputs":["YQ==",""]}`)
	f.Add(`{"inputs":null}`)
	f.Add(`{"inputs":["` + strings.Repeat("A", 20) + `"]}`)
	f.Fuzz(func(t *testing.T, body string) {
		ins, err := decodeJSONBatch(strings.NewReader(body), testLimits)
		if err == nil && (len(ins) == 0 || len(ins) > testLimits.maxItems) {
			t.Fatalf("accepted %d inputs", len(ins))
		}
	})
}

func toStrings(b [][]byte) []string {
	s := make([]string, len(b))
	for i := range b {
		s[i] = string(b[i])
	}
	return s
}

func TestOutcomeOfEverySource(t *testing.T) {
	for src, want := range map[coalesce.Source]byte{
		coalesce.Hit: outcomeHit, coalesce.Joined: outcomeJoined,
		coalesce.Computed: outcomeComputed, coalesce.Loaded: outcomeLoaded,
	} {
		if got := outcomeOf(src); got != want {
			t.Errorf("outcomeOf(%v) = %d; want %d", src, got, want)
		}
	}
}
