package replay

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseWorkload feeds arbitrary command-line arguments to the workload
// parser: it must never panic, every refusal must match ErrBadWorkload, and
// an accepted synthetic spec must keep its argument as its name.
func FuzzParseWorkload(f *testing.F) {
	for _, s := range []string{"zipf:0.9", "scan-zipf:0.8:50000", "loop:20000:2_000_000", "zipf:", "zipf:NaN", "zipf:1e400", "loop:0", "loop:1:2:3", "zipf:1:2147483648", "nosuch:1", "", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		if strings.ContainsRune(arg, 0) {
			return // not a possible command-line argument
		}
		w, err := ParseWorkload(arg, 1)
		if err != nil {
			if !errors.Is(err, ErrBadWorkload) {
				t.Fatalf("ParseWorkload(%q) error %v does not match ErrBadWorkload", arg, err)
			}
			return
		}
		if kind, _, ok := strings.Cut(arg, ":"); ok && (kind == "zipf" || kind == "scan-zipf" || kind == "loop") && w.Name != arg {
			t.Fatalf("ParseWorkload(%q).Name = %q", arg, w.Name)
		}
	})
}
