package disk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, or skips
// the test where that is not allowed (not root, or in a container without
// the capability).
func mountTmpfs(t *testing.T, size string, flags uintptr) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs to fill needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, "size="+size+",mode=0700"); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs on %s (%v); this test needs CAP_SYS_ADMIN", dir, err)
	}
	// Registered after TempDir's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the file system: %v", err)
			}
			return
		}
	}
}

func TestDiskFull(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncGroupCommit} {
		t.Run(mode.String(), func(t *testing.T) {
			mnt := mountTmpfs(t, "48m", 0)
			s := openT(t, Options{Dir: filepath.Join(mnt, "store"), Sync: mode, ReserveBytes: 8 << 20})
			for i := range 100 {
				mustSave(t, s, tk("", "v", i), valueOf(tk("", "v", i)), time.Time{})
			}
			mustFlush(t, s)
			filler := filepath.Join(mnt, "filler")
			fill(t, filler)

			// The first write after the disk fills is refused; with group
			// commit, Save learns of it from the next one.
			k := tk("", "v", 1000)
			err := s.Save(ctx, k, outcome(k))
			if mode == SyncGroupCommit {
				_ = s.Flush()
				err = s.Save(ctx, k, outcome(k))
				_ = s.Flush() // refused too: the disk is still full
			}
			if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Save on a full disk: %v, want ErrDiskFull", err)
			}
			st := s.Stats()
			if st.Healthy || st.WriteErrors == 0 || st.LastError == "" {
				t.Fatalf("stats on a full disk: %+v", st)
			}
			// Reads go on.
			for i := range 100 {
				if _, ok := load(t, s, tk("", "v", i)); !ok {
					t.Fatalf("key %d lost while the disk is full", i)
				}
			}

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			// With group commit, Save reports the last failure until a
			// write has succeeded: the record is still written.
			k = tk("", "v", 2000)
			if err := s.Save(ctx, k, outcome(k)); err != nil && mode == SyncAlways {
				t.Fatalf("Save after space returned: %v", err)
			}
			mustFlush(t, s)
			if st := s.Stats(); !st.Healthy {
				t.Fatalf("not healthy after space returned: %+v", st)
			}
			if _, ok := load(t, s, k); !ok {
				t.Fatal("the write after recovery is missing")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, Options{Dir: filepath.Join(mnt, "store")})
			if st := s.Stats(); st.Entries != 101 {
				t.Fatalf("entries after reopening: %d, want 101", st.Entries)
			}
		})
	}
}

// TestReadOnly: a store on a read-only file system is refused at Open with
// the system's error, not later. (As root, permission bits do not stop
// writes, so a read-only mount stands in for them.)
func TestReadOnly(t *testing.T) {
	mnt := mountTmpfs(t, "4m", syscall.MS_RDONLY)
	_, err := Open(Options{Dir: filepath.Join(mnt, "store"), Logger: quiet()})
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Open on a read-only file system: %v, want EROFS", err)
	}
	t.Log(err)
}

// TestPermission: as a user, a directory without write permission is
// refused at Open with an error that matches fs.ErrPermission.
func TestPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipped: root ignores permission bits (TestReadOnly covers the refusal)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	_, err := Open(Options{Dir: filepath.Join(dir, "store"), Logger: quiet()})
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("Open in a read-only directory: %v", err)
	}
}
