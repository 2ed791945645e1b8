package replay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/coalesce-go/coalesce/internal/trace"
)

// Workload is one key sequence to replay: a trace file or a generated one.
type Workload struct {
	// Name labels the workload in reports: a file's base name without its
	// suffixes (.trace.gz, .lis.zst, ...), or the synthetic spec as written.
	Name string
	// Format is the format a trace file is read in; empty for a synthetic
	// workload.
	Format trace.Format
	// Detected says why Format was chosen, when it was detected rather
	// than given.
	Detected string
	load     func() ([]uint64, error)
}

// Load reads or generates the workload's keys.
func (w Workload) Load() ([]uint64, error) { return w.load() }

// Defaults of the synthetic workloads; a spec overrides them positionally.
const (
	defaultKeys     = 100_000
	defaultRequests = 1_000_000
)

// SyntaxHelp documents the workload arguments, for the command's -h.
const SyntaxHelp = `A workload is a trace file (see --format; plain, gzip, xz or zstd) or a
synthetic workload, deterministic for a given --seed:

  zipf:S[:KEYS[:REQUESTS]]       Zipf over KEYS keys with skew S (any S > 0,
                                 e.g. 0.6 to 1.2)
  scan-zipf:S[:KEYS[:REQUESTS]]  the same Zipf, but after every KEYS/4 requests a
                                 scan of KEYS/10 keys never requested before
                                 (about 29% of requests are scan keys)
  loop:KEYS[:REQUESTS]           keys 1..KEYS requested in a cycle (LRU's worst
                                 case for any cache smaller than KEYS)

KEYS defaults to 100000 and REQUESTS to 1000000; underscores may separate
digits (1_000_000). Example: zipf:0.9  scan-zipf:0.8:50000  loop:20000:2000000`

// ErrBadWorkload is matched by every error about a workload argument.
var ErrBadWorkload = errors.New("bad workload")

// ParseWorkload turns a command-line argument into a Workload: a synthetic
// spec (see SyntaxHelp) or the path of an existing trace file, whose format
// is detected. seed selects the random stream of the synthetic workloads.
func ParseWorkload(arg string, seed uint64) (Workload, error) {
	return ParseWorkloadFormat(arg, seed, "")
}

// ParseWorkloadFormat is ParseWorkload with the format of a trace file
// given; an empty format asks for it to be detected (trace.Detect). A trace
// file is opened here, to detect its format and so that a missing or
// unreadable one is reported before any replay starts.
func ParseWorkloadFormat(arg string, seed uint64, format trace.Format) (Workload, error) {
	kind, params, synthetic := strings.Cut(arg, ":")
	switch kind {
	case "zipf", "scan-zipf":
		if !synthetic {
			break
		}
		parts := strings.Split(params, ":")
		if len(parts) > 3 || parts[0] == "" {
			return Workload{}, fmt.Errorf("%w %q: want %s:S[:KEYS[:REQUESTS]], e.g. %s:0.9", ErrBadWorkload, arg, kind, kind)
		}
		s, err := strconv.ParseFloat(parts[0], 64)
		if err != nil || !(s > 0) || s > 100 {
			return Workload{}, fmt.Errorf("%w %q: skew %q must be a number above 0 (typical: 0.6 to 1.2)", ErrBadWorkload, arg, parts[0])
		}
		keys, requests, err := counts(arg, parts[1:], defaultKeys, defaultRequests)
		if err != nil {
			return Workload{}, err
		}
		if kind == "zipf" {
			return Workload{Name: arg, load: func() ([]uint64, error) {
				return trace.ZipfKeys(seed, s, uint64(keys), requests)
			}}, nil
		}
		scanLen := max(keys/10, 1)
		period := max(keys/4, 1)
		return Workload{Name: arg, load: func() ([]uint64, error) {
			return trace.ScanZipfKeys(seed, s, uint64(keys), requests, scanLen, period)
		}}, nil
	case "loop":
		if !synthetic {
			break
		}
		parts := strings.Split(params, ":")
		if len(parts) > 2 || parts[0] == "" {
			return Workload{}, fmt.Errorf("%w %q: want loop:KEYS[:REQUESTS], e.g. loop:20000", ErrBadWorkload, arg)
		}
		keys, requests, err := counts(arg, parts, defaultKeys, defaultRequests)
		if err != nil {
			return Workload{}, err
		}
		return Workload{Name: arg, load: func() ([]uint64, error) {
			return trace.LoopKeys(uint64(keys), requests)
		}}, nil
	}
	tf, err := openTrace(arg)
	if err != nil {
		hint := ""
		if synthetic {
			hint = "; synthetic workloads are zipf:S, scan-zipf:S and loop:KEYS (see -h)"
		}
		return Workload{}, fmt.Errorf("%w %q: %v%s", ErrBadWorkload, arg, err, hint)
	}
	defer tf.Close()
	w := Workload{Name: traceName(arg), Format: format}
	if w.Format == "" {
		if w.Format, w.Detected, err = tf.detectFormat(arg); err != nil {
			return Workload{}, fmt.Errorf("%w %q: %v", ErrBadWorkload, arg, err)
		}
	}
	w.load = func() ([]uint64, error) { return readTrace(arg, w.Format) }
	return w, nil
}

// counts parses the optional KEYS and REQUESTS fields of a spec.
func counts(arg string, fields []string, keys, requests int) (int, int, error) {
	out := []*int{&keys, &requests}
	names := []string{"KEYS", "REQUESTS"}
	for i, f := range fields {
		n, err := strconv.ParseUint(strings.ReplaceAll(f, "_", ""), 10, 31)
		if err != nil || n == 0 {
			return 0, 0, fmt.Errorf("%w %q: %s %q must be a whole number from 1 to %d", ErrBadWorkload, arg, names[i], f, 1<<31-1)
		}
		*out[i] = int(n)
	}
	return keys, requests, nil
}
