package sim

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadTraceKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.trace.gz")
	f, _ := os.Create(path)
	zw := gzip.NewWriter(f)
	zw.Write([]byte("3\n1\n4\n1\n5\n"))
	zw.Close()
	f.Close()
	if keys, err := ReadTraceKeys(path, 0); err != nil || !slices.Equal(keys, []uint64{3, 1, 4, 1, 5}) {
		t.Fatalf("all keys: %v %v", keys, err)
	}
	if keys, err := ReadTraceKeys(path, 2); err != nil || !slices.Equal(keys, []uint64{3, 1}) {
		t.Fatalf("limit 2: %v %v", keys, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("1\nxyz\n"), 0o644)
	if _, err := ReadTraceKeys(bad, 0); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad trace: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if _, err := ReadTraceKeys(empty, 0); err == nil {
		t.Fatal("empty trace: want an error")
	}
	if _, err := ReadTraceKeys(filepath.Join(dir, "missing"), 0); err == nil {
		t.Fatal("missing file: want an error")
	}
}
