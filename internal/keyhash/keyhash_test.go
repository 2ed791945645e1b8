package keyhash

import (
	"bytes"
	"testing"
)

func TestSecretLength(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 32} {
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
	if r1 == r2 {
		t.Fatal("two random secrets are equal")
	}
}
