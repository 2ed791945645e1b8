package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/coalesce-go/coalesce"
)

// record frames one record of a batch response.
func record(outcome byte, payload string) []byte {
	b := []byte{outcome}
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestDecodeBatch(t *testing.T) {
	body := bytes.Join([][]byte{
		record(outcomeHit, "h"),
		record(outcomeJoined, ""),
		record(outcomeComputed, "ccc"),
		record(outcomeError, `{"code":"timeout","message":"slow"}`),
	}, nil)
	results := make([]coalesce.Result, 4)
	errs := make([]error, 4)
	if err := decodeBatch(bytes.NewReader(body), results, errs); err != nil {
		t.Fatal(err)
	}
	want := []coalesce.Result{{Value: []byte("h"), Source: coalesce.Hit}, {Value: []byte{}, Source: coalesce.Joined}, {Value: []byte("ccc"), Source: coalesce.Computed}, {}}
	for i := range want {
		if !bytes.Equal(results[i].Value, want[i].Value) || results[i].Source != want[i].Source || (i < 3) != (errs[i] == nil) {
			t.Errorf("record %d: %+v %v, want %+v", i, results[i], errs[i], want[i])
		}
	}
	if results[1].Value == nil {
		t.Error("an empty result is nil; want empty")
	}
	var e *Error
	if !errors.As(errs[3], &e) || e.Status != 504 || !errors.Is(errs[3], coalesce.ErrTimeout) || e.Message != "slow" {
		t.Errorf("the error record: %v", errs[3])
	}

	for name, bad := range map[string][]byte{
		"short":          body[:len(body)-1],
		"trailing bytes": append(append([]byte{}, body...), 0),
		"bad outcome":    append(record(7, "x"), body[len(record(outcomeHit, "h")):]...),
		"error not JSON": bytes.Join([][]byte{record(0, ""), record(0, ""), record(0, ""), record(outcomeError, "boom")}, nil),
		"forged length":  {0, 0xff, 0xff, 0xff, 0xff, 'x'},
	} {
		if err := decodeBatch(bytes.NewReader(bad), make([]coalesce.Result, 4), make([]error, 4)); !errors.Is(err, errBatchResponse) {
			t.Errorf("%s: %v, want errBatchResponse", name, err)
		}
	}
}

func TestEncodeBatch(t *testing.T) {
	got, err := encodeBatch([][]byte{[]byte("ab"), nil, []byte("c")})
	want := []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 0, 0, 1, 'c'}
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("encodeBatch = %v %v, want %v", got, err, want)
	}
}

// FuzzDecodeBatch: whatever the daemon (or something in its place)
// answers, the decoder returns an error or a full set of outcomes, never
// panics, and allocates no more than the body it read.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(uint8(2), bytes.Join([][]byte{record(outcomeHit, "h"), record(outcomeError, `{"code":"x","message":"y"}`)}, nil))
	f.Add(uint8(1), record(outcomeComputed, ""))
	f.Add(uint8(1), []byte{0, 0xff, 0xff, 0xff, 0xff})
	f.Add(uint8(3), []byte{})
	f.Fuzz(func(t *testing.T, n uint8, body []byte) {
		results := make([]coalesce.Result, n)
		errs := make([]error, n)
		err := decodeBatch(bytes.NewReader(body), results, errs)
		if err != nil {
			return
		}
		total := 0
		for i := range results {
			if (errs[i] == nil) == (results[i].Value == nil) {
				t.Fatalf("record %d: value %v and error %v", i, results[i].Value, errs[i])
			}
			total += 5 + len(results[i].Value)
		}
		if total > len(body) {
			t.Fatalf("%d bytes of results from a %d-byte body", total, len(body))
		}
	})
}
