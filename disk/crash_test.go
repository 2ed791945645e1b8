package disk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// The crash test's child: this test binary, re-executed with these set.
const (
	crashChildEnv  = "COALESCE_CRASH_CHILD"
	crashDirEnv    = "COALESCE_CRASH_DIR"
	crashSeedEnv   = "COALESCE_CRASH_SEED"
	crashRoundsEnv = "COALESCE_CRASH_ROUNDS"
)

// crashValue is the Func of the crash and restart tests: deterministic, so
// that any result can be checked, and as long as a real one (128 bytes).
func crashValue(input []byte) []byte {
	h := sha256.Sum256(input)
	return bytes.Repeat(h[:], 4)
}

func crashInput(i int) []byte { return []byte("input-" + strconv.Itoa(i)) }

// crashChild computes under concurrent load with the disk tier on
// SyncAlways, and prints "ack N" once Get has returned input N's result,
// until it is killed. A wrong result is printed as "bad N" and ends it.
func crashChild() {
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	st, err := Open(Options{Dir: os.Getenv(crashDirEnv), Sync: SyncAlways, ReserveBytes: -1, Logger: quiet()})
	if err != nil {
		fmt.Printf("open %v\n", err)
		os.Exit(2)
	}
	g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		return crashValue(in), nil
	}, coalesce.Options{Tiers: []coalesce.Tier{st}, Secret: st.Secret(), Version: "v1", Workers: 4})
	if err != nil {
		fmt.Printf("new %v\n", err)
		os.Exit(2)
	}
	var out sync.Mutex
	for w := range 8 {
		go func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				// Half the inputs are likely from earlier rounds (loaded
				// from disk), half new (computed and saved).
				i := rng.IntN(int(seed%1000+1) * 50)
				r, err := g.Get(context.Background(), crashInput(i))
				out.Lock()
				switch {
				case err != nil:
					fmt.Printf("err %d %v\n", i, err)
				case !bytes.Equal(r.Value, crashValue(crashInput(i))):
					fmt.Printf("bad %d\n", i)
					os.Exit(3)
				default:
					// One write per line, unbuffered: an "ack" the parent
					// reads was printed before the kill.
					fmt.Printf("ack %d\n", i)
				}
				out.Unlock()
			}
		}()
	}
	select {}
}

func TestCrash(t *testing.T) {
	rounds := 50
	if s := os.Getenv(crashRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of rounds", crashRoundsEnv, s)
		}
		rounds = n
	} else if testing.Short() {
		rounds = 10
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	acked := map[int]bool{}
	var loadedTotal uint64
	for round := range rounds {
		round := uint64(round)
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(round, 10))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of acknowledgments, 0 included (a
		// kill during start-up or recovery), plus a random instant after.
		killAfter := rng.IntN(40)
		sc := bufio.NewScanner(stdout)
		var lines []string
		killed := false
		kill := func() {
			if !killed {
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		if killAfter == 0 {
			kill()
		}
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) >= killAfter {
				kill()
			}
		}
		kill()
		_ = cmd.Wait()
		thisRound := 0
		fresh := map[int]bool{}
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "ack":
				i, _ := strconv.Atoi(f[1])
				acked[i] = true
				fresh[i] = true
				thisRound++
			default:
				t.Fatalf("round %d: the child said %q", round, l)
			}
		}
		// Every round checks its own acknowledgments and a sample of the
		// earlier ones; every tenth and the last check them all.
		check := fresh
		if int(round) == rounds-1 || round%10 == 9 {
			check = acked
		} else {
			for i := range acked {
				if len(check) >= len(fresh)+50 {
					break
				}
				check[i] = true
			}
		}
		t1 := time.Now()
		loadedTotal += checkCrashStore(t, dir, check, round)
		t.Logf("round %d: %d acknowledged (%d in all); child %v, check %v", round, thisRound, len(acked), t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	}
	t.Logf("%d rounds, %d inputs acknowledged, %d loaded from disk by the checks", rounds, len(acked), loadedTotal)
}

// checkCrashStore opens the store a child was killed on and checks that
// every input acknowledged so far is served from disk, correct, with no
// computation, and that no record is corrupt.
func checkCrashStore(t *testing.T, dir string, acked map[int]bool, round uint64) uint64 {
	t.Helper()
	st, err := Open(Options{Dir: dir, ReserveBytes: -1, Logger: quiet()})
	if err != nil {
		t.Fatalf("round %d: the store does not open after the kill: %v", round, err)
	}
	defer st.Close()
	rep, err := st.Verify(ctx)
	if err != nil || rep.Corrupt != 0 || rep.BadKeys != 0 {
		t.Fatalf("round %d: Verify: %+v %v", round, rep, err)
	}
	g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
		return nil, fmt.Errorf("computed %q: it was acknowledged, so it must be on disk", in)
	}, coalesce.Options{Tiers: []coalesce.Tier{st}, Secret: st.Secret(), Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for i := range acked {
		r, err := g.Get(ctx, crashInput(i))
		if err != nil {
			t.Fatalf("round %d: acknowledged input %d: %v", round, i, err)
		}
		if r.Source != coalesce.Loaded || !bytes.Equal(r.Value, crashValue(crashInput(i))) {
			t.Fatalf("round %d: input %d: source %v, value %x", round, i, r.Source, r.Value)
		}
	}
	return g.Stats().Loaded
}

// TestRestart: a clean shutdown keeps every result (served after it with
// no computation), and a version bump serves none of them.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	run := func(version string, check func(g *coalesce.Group, r coalesce.Result, i int)) coalesce.Stats {
		st := openT(t, Options{Dir: dir})
		g, err := coalesce.New(func(ctx context.Context, in []byte) ([]byte, error) {
			return crashValue(append([]byte(version), in...)), nil
		}, coalesce.Options{Tiers: []coalesce.Tier{st}, Secret: st.Secret(), Version: version})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			r, err := g.Get(ctx, crashInput(i))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Value, crashValue(append([]byte(version), crashInput(i)...))) {
				t.Fatalf("version %s, input %d: a wrong value (source %v)", version, i, r.Source)
			}
			check(g, r, i)
		}
		stats := g.Stats()
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		return stats
	}
	if s := run("v1", func(*coalesce.Group, coalesce.Result, int) {}); s.Computed != n {
		t.Fatalf("first run computed %d, want %d", s.Computed, n)
	}
	s := run("v1", func(_ *coalesce.Group, r coalesce.Result, i int) {
		if r.Source != coalesce.Loaded {
			t.Fatalf("after a restart, input %d: source %v, want Loaded", i, r.Source)
		}
	})
	if s.Computed != 0 || s.Loaded != n {
		t.Fatalf("after a restart: computed %d, loaded %d; want 0 and %d", s.Computed, s.Loaded, n)
	}
	s = run("v2", func(_ *coalesce.Group, r coalesce.Result, i int) {
		if r.Source == coalesce.Loaded {
			t.Fatalf("after a version bump, input %d was served from disk", i)
		}
	})
	if s.Computed != n || s.Loaded != 0 {
		t.Fatalf("after a version bump: computed %d, loaded %d; want %d and 0", s.Computed, s.Loaded, n)
	}
	st := openT(t, Options{Dir: dir})
	if deleted, err := st.DeleteOtherVersions("", "v2"); err != nil || deleted != n {
		t.Fatalf("DeleteOtherVersions: %d, %v; want %d", deleted, err, n)
	}
}
