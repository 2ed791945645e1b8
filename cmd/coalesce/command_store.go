package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/coalesce-go/coalesce"
	"github.com/coalesce-go/coalesce/disk"
)

func init() {
	register(command{
		name:    "store",
		summary: "look into a disk tier offline: stats, get, delete, verify",
		run:     runStore,
	})
}

const storeUsage = `usage: coalesce store <stats|get|delete|verify> [flags] DIR

Looks into the disk tier in DIR (the daemon's --data-dir) while no daemon
has it open.

  stats DIR                       counts, sizes, and the namespaces and versions held
  get [-namespace N] [-version V] (-key HEX | -input TEXT | -input-file F) [-hex] DIR
                                  one result, written to stdout (-hex: as hex)
  delete -namespace N [-version V | -except-version V] DIR
  delete [-namespace N] [-version V] (-key HEX | -input TEXT | -input-file F) DIR
                                  delete a namespace ("_" names the default one), one
                                  version of it, every version but one, or one result
  verify DIR                      re-check every record's checksum; exit status 1 if any is corrupt
`

// errCorruptFound makes verify's exit status 1 when it found corrupt
// records; the report itself is on stdout.
var errCorruptFound = errors.New("corrupt records found (they are never served; the daemon deletes each when it meets it)")

func runStore(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, storeUsage)
		if len(args) == 0 {
			return errors.New("a subcommand is needed: stats, get, delete or verify")
		}
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("coalesce store "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, storeUsage) }
	ns := fs.String("namespace", "", `namespace ("" or "_" for the default one)`)
	version := fs.String("version", "", "version of the computation")
	except := fs.String("except-version", "", "delete: every version of the namespace but this one")
	keyHex := fs.String("key", "", "the result's key, 32 hex digits (the Coalesce-Key header)")
	input := fs.String("input", "", "the input whose result to find")
	inputFile := fs.String("input-file", "", "file holding the input whose result to find")
	asHex := fs.Bool("hex", false, "get: write the value as hex")
	switch sub {
	case "stats", "get", "delete", "verify":
	default:
		fmt.Fprint(stderr, storeUsage)
		return fmt.Errorf("unknown subcommand %q: allowed stats, get, delete or verify", sub)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%s needs exactly one DIR after its flags; got %d arguments", sub, fs.NArg())
	}
	dir := fs.Arg(0)
	if *ns == "_" {
		*ns = ""
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory holding a store", dir)
	}
	if _, err := os.Stat(dir + "/secret"); err != nil {
		return fmt.Errorf("%s holds no store (no secret file in it); give the daemon's --data-dir", dir)
	}
	// No eviction offline: the budget is the daemon's to enforce.
	s, err := disk.Open(disk.Options{Dir: dir, MaxBytes: 1 << 50, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	key := func() (coalesce.TierKey, error) {
		tk := coalesce.TierKey{Namespace: *ns, Version: *version}
		n := 0
		for _, v := range []string{*keyHex, *input, *inputFile} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return tk, errors.New("give exactly one of -key, -input and -input-file")
		}
		if *keyHex != "" {
			k, err := coalesce.ParseKey(*keyHex)
			tk.Key = k
			return tk, err
		}
		in := []byte(*input)
		if *inputFile != "" {
			if in, err = os.ReadFile(*inputFile); err != nil {
				return tk, err
			}
		}
		k, err := keyOf(s.Secret(), *ns, *version, in)
		tk.Key = k
		return tk, err
	}

	given := givenFlags(fs)
	switch sub {
	case "stats":
		st := s.Stats()
		spaces, err := s.Namespaces(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "entries\t%d\n", st.Entries)
		fmt.Fprintf(tw, "bytes\t%d\t(accounted; the daemon's --disk-max-gib bounds it)\n", st.Bytes)
		fmt.Fprintf(tw, "files\t%d\t(bytes of the engine's files)\n", st.DiskBytes)
		fmt.Fprintf(tw, "generation\t%d\n", st.Generation)
		fmt.Fprintln(tw, "\nnamespace\tversion\tentries\tbytes")
		for _, n := range spaces {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", orDefault(n.Namespace), orNone(n.Version), n.Entries, n.Bytes)
		}
		return tw.Flush()
	case "get":
		tk, err := key()
		if err != nil {
			return err
		}
		v, info, err := s.Get(tk)
		if err != nil {
			return err
		}
		exp := "never"
		if !info.Expires.IsZero() {
			exp = info.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(stderr, "key %s namespace %s version %s: %d bytes, generation %d, expires %s\n",
			info.Key, orDefault(info.Namespace), orNone(info.Version), len(v), info.Generation, exp)
		if *asHex {
			_, err = fmt.Fprintln(stdout, hex.EncodeToString(v))
		} else {
			_, err = stdout.Write(v)
		}
		return err
	case "delete":
		if *keyHex != "" || *input != "" || *inputFile != "" {
			tk, err := key()
			if err != nil {
				return err
			}
			found, err := s.Delete(tk)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("no result under key %s in namespace %s version %s", tk.Key, orDefault(tk.Namespace), orNone(tk.Version))
			}
			fmt.Fprintf(stdout, "deleted 1 result\n")
			return nil
		}
		if !given["namespace"] {
			return errors.New(`delete needs -namespace (and -version or -except-version to narrow it), or a result's -key or -input; "_" names the default namespace`)
		}
		var n int64
		switch {
		case given["version"] && given["except-version"]:
			return errors.New("give -version or -except-version, not both")
		case given["version"]:
			n, err = s.DeleteVersion(*ns, *version)
		case given["except-version"]:
			n, err = s.DeleteOtherVersions(*ns, *except)
		default:
			n, err = s.DeleteNamespace(*ns)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d results\n", n)
		return nil
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "namespace\tversion\tok\tcorrupt\texpired")
	for _, c := range rep.Namespaces {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", orDefault(c.Namespace), orNone(c.Version), c.OK, c.Corrupt, c.Expired)
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\n", rep.OK, rep.Corrupt, rep.Expired)
	if rep.BadKeys > 0 {
		fmt.Fprintf(tw, "keys that are not records: %d\n", rep.BadKeys)
	}
	tw.Flush()
	if rep.Corrupt > 0 || rep.BadKeys > 0 {
		return errCorruptFound
	}
	return nil
}

// keyOf computes an input's key as the daemon does: the store's secret,
// the namespace and the version.
func keyOf(secret []byte, ns, version string, input []byte) (coalesce.Key, error) {
	g, err := coalesce.New(func(context.Context, []byte) ([]byte, error) { return nil, errors.New("not used") },
		coalesce.Options{Secret: secret, Version: version, Workers: 1, CacheBytes: 1 << 20, MaxInputSize: coalesce.LimitInputSize})
	if err != nil {
		return coalesce.Key{}, err
	}
	defer g.Close()
	n, err := g.Namespace(ns, version)
	if err != nil {
		return coalesce.Key{}, err
	}
	return n.KeyOf(input)
}

func orDefault(ns string) string {
	if ns == "" {
		return "_"
	}
	return ns
}

func orNone(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
