package disk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

const brokenChildEnv = "COALESCE_BROKEN_CHILD"

// brokenChild runs the failing-log scenario of TestBrokenEngine, in a
// process of its own because the failed engine's goroutines cannot be
// stopped, and prints "ok" or what went wrong.
func brokenChild() {
	fail := func(format string, args ...any) {
		fmt.Printf("fail: "+format+"\n", args...)
		os.Exit(1)
	}
	var failing atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && strings.HasSuffix(op.Path, ".log") &&
			(op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) {
			return syscall.EIO
		}
		return nil
	})
	s, err := Open(Options{Dir: os.Getenv(crashDirEnv), Sync: SyncAlways, ReserveBytes: -1, Logger: quiet(),
		fs: errorfs.Wrap(vfs.Default, inj)})
	if err != nil {
		fail("open: %v", err)
	}
	for i := range 10 {
		if err := s.Save(ctx, tk("", "v", i), outcome(tk("", "v", i))); err != nil {
			fail("save before the fault: %v", err)
		}
	}
	failing.Store(true)
	within := func(what string, f func()) {
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			fail("%s hangs", what)
		}
	}
	var errs []error
	within("Save on a failing log", func() {
		for i := range 3 {
			errs = append(errs, s.Save(ctx, tk("", "v", 100+i), outcome(tk("", "v", 100+i))))
		}
	})
	for i, err := range errs {
		if err == nil {
			fail("save %d on a failing log succeeded", i)
		}
	}
	if last := errs[len(errs)-1]; !errors.Is(last, ErrBroken) && !errors.Is(last, ErrWriteFailed) {
		fail("the last save: %v", last)
	}
	if st := s.Stats(); st.Healthy || st.WriteErrors < 3 {
		fail("stats: %+v", st)
	}
	within("Load after the fault", func() {
		r, err := s.Load(ctx, tk("", "v", 3))
		if err != nil || !r.Found || !bytes.Equal(r.Value, valueOf(tk("", "v", 3))) {
			fail("load after the fault: %v %v", err, r.Found)
		}
	})
	within("Close", func() { _ = s.Close() })
	fmt.Printf("ok: %v\n", errs)
}

// TestBrokenEngine: when the engine's log cannot be written, Save fails
// (it neither hangs nor panics), Stats says so, reads go on, Close
// returns; the records synced before are there in the next process.
func TestBrokenEngine(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), brokenChildEnv+"=1", crashDirEnv+"="+dir)
	out, err := cmd.Output()
	t.Logf("child: %s", out)
	if err != nil || !bytes.HasPrefix(out, []byte("ok")) {
		t.Fatalf("child: %v", err)
	}
	s := openT(t, Options{Dir: dir})
	for i := range 10 {
		if v, ok := load(t, s, tk("", "v", i)); !ok || !bytes.Equal(v, valueOf(tk("", "v", i))) {
			t.Fatalf("record %d, synced before the fault, is missing", i)
		}
	}
}
