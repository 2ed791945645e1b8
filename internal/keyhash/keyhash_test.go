package keyhash

import (
	"bytes"
	"testing"
)

func TestSecretLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New with a %d-byte secret: want an error", n)
		}
	}
}

func TestKeyedAndDeterministic(t *testing.T) {
	a, _ := New(bytes.Repeat([]byte{1}, SecretSize))
	a2, _ := New(bytes.Repeat([]byte{1}, SecretSize))
	b, _ := New(bytes.Repeat([]byte{2}, SecretSize))
	in := []byte("the same input")
	if a.Sum(in) != a2.Sum(in) {
		t.Fatal("same secret, same input: keys differ")
	}
	if a.Sum(in) == b.Sum(in) {
		t.Fatal("different secrets gave the same key")
	}
	if a.Sum(in) == a.Sum([]byte("the same inpuT")) {
		t.Fatal("different inputs gave the same key")
	}
	r1, _ := New(nil)
	r2, _ := New(nil)
	if r1.Sum(in) == r2.Sum(in) {
		t.Fatal("two random secrets gave the same key")
	}
}

// TestSecretIsCopied guards against a caller mutating its secret slice
// after New and silently changing every key.
func TestSecretIsCopied(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, SecretSize)
	h, _ := New(secret)
	before := h.Sum([]byte("x"))
	secret[0] = 8
	if h.Sum([]byte("x")) != before {
		t.Fatal("changing the caller's secret changed the keys")
	}
}

func BenchmarkSum512(b *testing.B) {
	h, _ := New(nil)
	in := make([]byte, 512)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		h.Sum(in)
	}
}
