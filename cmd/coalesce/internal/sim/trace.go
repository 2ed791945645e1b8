package sim

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/coalesce-go/coalesce/internal/trace"
)

// ReadTraceKeys reads up to limit keys (all when limit <= 0) from a trace
// file in the format of the project's traces (see internal/trace), stopping
// early so that a short run does not read a 5-million-line trace whole.
func ReadTraceKeys(path string, limit int) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	var keys []uint64
	for limit <= 0 || len(keys) < limit {
		k, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: the trace has no keys", path)
	}
	return keys, nil
}
