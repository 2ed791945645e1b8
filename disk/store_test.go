package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

var ctx = context.Background()

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openT(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = quiet()
	}
	if o.ReserveBytes == 0 {
		o.ReserveBytes = -1
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tk(ns, version string, i int) coalesce.TierKey {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(i))
	binary.BigEndian.PutUint64(b[8:], uint64(i)*0x9e3779b97f4a7c15)
	return coalesce.TierKey{Namespace: ns, Version: version, Key: coalesce.KeyFromBytes(b)}
}

// valueOf is the expected value of key i: 128 bytes that tell keys apart.
func valueOf(k coalesce.TierKey) []byte {
	b := k.Key.Bytes()
	h := sha256.Sum256(append([]byte(k.Namespace+"\x00"+k.Version+"\x00"), b[:]...))
	return bytes.Repeat(h[:], 4)
}

func mustSave(t testing.TB, s *Store, k coalesce.TierKey, v []byte, exp time.Time) {
	t.Helper()
	if err := s.Save(ctx, k, coalesce.Outcome{Value: v, Expires: exp}); err != nil {
		t.Fatalf("Save %v: %v", k.Key, err)
	}
}

func mustFlush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func load(t testing.TB, s *Store, k coalesce.TierKey) ([]byte, bool) {
	t.Helper()
	r, err := s.Load(ctx, k)
	if err != nil {
		t.Fatalf("Load %v: %v", k.Key, err)
	}
	return r.Value, r.Found
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range []SyncMode{SyncGroupCommit, SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			s := openT(t, Options{Sync: mode})
			for i := range 100 {
				k := tk("", "v1", i)
				mustSave(t, s, k, valueOf(k), time.Time{})
			}
			// A failed outcome is not stored.
			if err := s.Save(ctx, tk("", "v1", 1000), coalesce.Outcome{Err: errors.New("boom")}); err != nil {
				t.Fatal(err)
			}
			mustFlush(t, s)
			for i := range 100 {
				k := tk("", "v1", i)
				v, ok := load(t, s, k)
				if !ok || !bytes.Equal(v, valueOf(k)) {
					t.Fatalf("key %d: found %v, value %x", i, ok, v)
				}
			}
			for _, k := range []coalesce.TierKey{tk("", "v1", 1000), tk("", "v2", 1), tk("x", "v1", 1)} {
				if _, ok := load(t, s, k); ok {
					t.Fatalf("%+v found", k)
				}
			}
			v, info, err := s.Get(tk("", "v1", 7))
			if err != nil || !bytes.Equal(v, valueOf(tk("", "v1", 7))) || info.Generation == 0 || info.Size != 128+minRecordLen {
				t.Fatalf("Get: %x %+v %v", v, info, err)
			}
			if _, _, err := s.Get(tk("", "v1", 1000)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a missing key: %v", err)
			}
			st := s.Stats()
			if st.Entries != 100 || st.Hits != 100 || st.Misses != 3 || st.Writes != 100 || !st.Healthy || st.Bytes <= 0 {
				t.Fatalf("stats %+v", st)
			}
			// Overwriting counts once.
			mustSave(t, s, tk("", "v1", 3), []byte("new"), time.Time{})
			mustFlush(t, s)
			if v, _ := load(t, s, tk("", "v1", 3)); string(v) != "new" {
				t.Fatalf("overwrite: %q", v)
			}
			if st := s.Stats(); st.Entries != 100 {
				t.Fatalf("entries after an overwrite: %d", st.Entries)
			}
			ok, err := s.Delete(tk("", "v1", 3))
			if !ok || err != nil {
				t.Fatalf("Delete: %v %v", ok, err)
			}
			if ok, _ := s.Delete(tk("", "v1", 3)); ok {
				t.Fatal("Delete of a deleted key found it")
			}
			if _, ok := load(t, s, tk("", "v1", 3)); ok {
				t.Fatal("deleted key found")
			}
			if st := s.Stats(); st.Entries != 99 {
				t.Fatalf("entries after a delete: %d", st.Entries)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	s := openT(t, Options{})
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	mustSave(t, s, tk("", "", 1), []byte("stale"), past)
	mustSave(t, s, tk("", "", 2), []byte("fresh"), future)
	mustFlush(t, s)
	if rep, err := s.Verify(ctx); err != nil || rep.Expired != 1 || rep.OK != 1 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
	if _, ok := load(t, s, tk("", "", 1)); ok {
		t.Fatal("expired record served")
	}
	r, err := s.Load(ctx, tk("", "", 2))
	if err != nil || !r.Found || string(r.Value) != "fresh" || !r.Expires.Equal(future.Round(0)) {
		t.Fatalf("fresh record: %+v %v (want expiry %v)", r, err, future)
	}
	mustFlush(t, s)
	if _, _, err := s.Get(tk("", "", 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired record not removed: %v", err)
	}
	if st := s.Stats(); st.Expired != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCorruptRecord(t *testing.T) {
	s := openT(t, Options{})
	for i := range 10 {
		mustSave(t, s, tk("n", "v", i), valueOf(tk("n", "v", i)), time.Time{})
	}
	mustFlush(t, s)
	for i, damage := range []func([]byte) []byte{
		func(b []byte) []byte { b[10] ^= 0x40; return b },               // a value bit
		func(b []byte) []byte { b[0] = 9; return b },                    // the format
		func(b []byte) []byte { return b[:5] },                          // truncated
		func(b []byte) []byte { b[len(b)-1] ^= 1; return b },            // the checksum
		func(b []byte) []byte { return append(b, 0) },                   // a byte more
		func(b []byte) []byte { b[1] = flagExpires; return b },          // a flag
		func(b []byte) []byte { return nil },                            // empty
		func(b []byte) []byte { return bytes.Repeat([]byte{0xff}, 64) }, // garbage
	} {
		k := tk("n", "v", i)
		rk, _ := recordKey(k)
		raw, closer, err := s.db.Get(rk)
		if err != nil {
			t.Fatal(err)
		}
		bad := damage(bytes.Clone(raw))
		closer.Close()
		if err := s.db.Set(rk, bad, nil); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.Verify(ctx)
	if err != nil || rep.Corrupt != 8 || rep.OK != 2 || len(rep.Namespaces) != 1 || rep.Namespaces[0].Corrupt != 8 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
	if _, _, err := s.Get(tk("n", "v", 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a corrupt record: %v", err)
	}
	for i := range 10 {
		v, ok := load(t, s, tk("n", "v", i))
		if want := i >= 8; ok != want || (ok && !bytes.Equal(v, valueOf(tk("n", "v", i)))) {
			t.Fatalf("key %d: found %v", i, ok)
		}
	}
	mustFlush(t, s)
	if rep, err := s.Verify(ctx); err != nil || rep.Corrupt != 0 || rep.OK != 2 {
		t.Fatalf("corrupt records not removed: %+v %v", rep, err)
	}
	if st := s.Stats(); st.Corrupt != 8 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNamespaceDeletes(t *testing.T) {
	s := openT(t, Options{})
	spaces := []struct{ ns, v string }{{"", "v1"}, {"a", "v1"}, {"a", "v2"}, {"a", "v3"}, {"ab", "v1"}, {"b", ""}, {"a", "v"}}
	for _, sp := range spaces {
		for i := range 20 {
			mustSave(t, s, tk(sp.ns, sp.v, i), []byte(sp.ns+sp.v), time.Time{})
		}
	}
	mustFlush(t, s)
	count := func() map[string]int64 {
		t.Helper()
		list, err := s.Namespaces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, n := range list {
			m[n.Namespace+"/"+n.Version] = n.Entries
		}
		return m
	}
	if got := count(); len(got) != len(spaces) || got["a/v2"] != 20 {
		t.Fatalf("Namespaces: %v", got)
	}
	if n, err := s.DeleteVersion("a", "v1"); n != 20 || err != nil {
		t.Fatalf("DeleteVersion: %d %v", n, err)
	}
	if got := count(); got["a/v1"] != 0 || got["a/v2"] != 20 || got["ab/v1"] != 20 || got["a/v"] != 20 {
		t.Fatalf("after DeleteVersion: %v", got)
	}
	if n, err := s.DeleteOtherVersions("a", "v2"); n != 40 || err != nil {
		t.Fatalf("DeleteOtherVersions: %d %v", n, err)
	}
	if got := count(); len(got) != 4 || got["a/v2"] != 20 || got["ab/v1"] != 20 {
		t.Fatalf("after DeleteOtherVersions: %v", got)
	}
	if n, err := s.DeleteNamespace("a"); n != 20 || err != nil {
		t.Fatalf("DeleteNamespace: %d %v", n, err)
	}
	if got := count(); len(got) != 3 || got["ab/v1"] != 20 || got["/v1"] != 20 || got["b/"] != 20 {
		t.Fatalf("after DeleteNamespace: %v", got)
	}
	if _, ok := load(t, s, tk("a", "v2", 1)); ok {
		t.Fatal("deleted namespace served")
	}
	if v, ok := load(t, s, tk("ab", "v1", 1)); !ok || string(v) != "abv1" {
		t.Fatal("neighbouring namespace lost")
	}
	if st := s.Stats(); st.Entries != 60 {
		t.Fatalf("entries %d, want 60", st.Entries)
	}
}

func TestEvictionKeepsUsed(t *testing.T) {
	s := openT(t, Options{MaxBytes: MinMaxBytes})
	const hot = 50
	loaded := func(i int) coalesce.TierKey { return tk("", "v", i) }
	touched := func(i int) coalesce.TierKey { return tk("", "v", 1_000_000+i) }
	for i := range hot {
		mustSave(t, s, loaded(i), valueOf(loaded(i)), time.Time{})
		mustSave(t, s, touched(i), valueOf(touched(i)), time.Time{})
	}
	// Write about three times the store's size, using the hot keys (by Load and
	// by Touched, as the memory tier's hits) every 1000 writes.
	const n = 12_000
	for i := range n {
		k := tk("", "v", 10_000+i)
		mustSave(t, s, k, valueOf(k), time.Time{})
		if i%1000 == 0 {
			mustFlush(t, s)
			var ks []coalesce.TierKey
			for j := range hot {
				if _, ok := load(t, s, loaded(j)); !ok {
					t.Fatalf("after %d writes: hot key %d evicted", i, j)
				}
				ks = append(ks, touched(j))
			}
			s.Touched(ks)
		}
	}
	mustFlush(t, s)
	st := s.Stats()
	if st.Bytes > st.MaxBytes || st.Evictions < n/2 || st.Entries > int64(st.MaxBytes/200) {
		t.Fatalf("stats %+v", st)
	}
	for j := range hot {
		if _, ok := load(t, s, touched(j)); !ok {
			t.Fatalf("touched key %d evicted", j)
		}
	}
	// The most recent writes are kept, the oldest gone.
	if _, ok := load(t, s, tk("", "v", 10_000+n-1)); !ok {
		t.Fatal("the last write was evicted")
	}
	if _, ok := load(t, s, tk("", "v", 10_000)); ok {
		t.Fatal("the first cold write was kept")
	}
	t.Logf("entries %d, accounted %d B, generation %d, evictions %d", st.Entries, st.Bytes, st.Generation, st.Evictions)
}

func TestRestartKeepsRecordsAndSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: quiet(), ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Clone(s.Secret())
	if len(secret) != SecretSize {
		t.Fatalf("secret of %d bytes", len(secret))
	}
	for i := range 1000 {
		mustSave(t, s, tk("", "v", i), valueOf(tk("", "v", i)), time.Time{})
	}
	// No Flush: Close must write what is queued.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, tk("", "v", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
	if err := s.Save(ctx, tk("", "v", 1), coalesce.Outcome{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
	s = openT(t, Options{Dir: dir})
	if !bytes.Equal(s.Secret(), secret) {
		t.Fatal("secret changed across a restart")
	}
	if st := s.Stats(); st.Entries != 1000 {
		t.Fatalf("entries after restart: %d", st.Entries)
	}
	for i := range 1000 {
		if v, ok := load(t, s, tk("", "v", i)); !ok || !bytes.Equal(v, valueOf(tk("", "v", i))) {
			t.Fatalf("key %d lost", i)
		}
	}
	// A second process (or Open) cannot open the same directory.
	if s2, err := Open(Options{Dir: dir, Logger: quiet()}); err == nil {
		s2.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestConcurrent(t *testing.T) {
	for _, mode := range []SyncMode{SyncGroupCommit, SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			s := openT(t, Options{Sync: mode, MaxBytes: 4 << 20})
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for range 1500 {
						k := tk("", "v", rng.IntN(3000))
						switch rng.IntN(10) {
						case 0, 1, 2:
							if err := s.Save(ctx, k, coalesce.Outcome{Value: valueOf(k)}); err != nil {
								t.Error(err)
								return
							}
						case 3:
							s.Touched([]coalesce.TierKey{k})
						case 4:
							if _, err := s.Delete(k); err != nil {
								t.Error(err)
								return
							}
						default:
							r, err := s.Load(ctx, k)
							if err != nil || (r.Found && !bytes.Equal(r.Value, valueOf(k))) {
								t.Errorf("Load: %v, %x", err, r.Value)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			mustFlush(t, s)
			rep, err := s.Verify(ctx)
			if err != nil || rep.Corrupt != 0 {
				t.Fatalf("Verify %+v %v", rep, err)
			}
			if st := s.Stats(); st.Entries != rep.OK {
				t.Fatalf("entries %d, Verify counted %d", st.Entries, rep.OK)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{},
		{Dir: dir, MaxBytes: 1000},
		{Dir: dir, Sync: 7},
		{Dir: dir, CommitInterval: -1},
		{Dir: dir, CommitInterval: time.Hour},
		{Dir: dir, MaxPending: -1},
	} {
		if s, err := Open(o); !errors.Is(err, ErrBadOptions) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%+v): %v, want ErrBadOptions", o, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), "always") {
		t.Errorf("ParseSyncMode: %v", err)
	}
	for in, want := range map[string]SyncMode{"group": SyncGroupCommit, "always": SyncAlways} {
		if m, err := ParseSyncMode(in); m != want || err != nil || m.String() != in {
			t.Errorf("ParseSyncMode(%q) = %v, %v", in, m, err)
		}
	}
	s := openT(t, Options{})
	long := strings.Repeat("x", MaxNameLen+1)
	k := tk(long, "", 1)
	if _, err := s.Load(ctx, k); !errors.Is(err, ErrBadKey) {
		t.Errorf("Load with a long namespace: %v", err)
	}
	if err := s.Save(ctx, tk("", long, 1), coalesce.Outcome{}); !errors.Is(err, ErrBadKey) {
		t.Errorf("Save with a long version: %v", err)
	}
	if _, err := s.DeleteNamespace(long); !errors.Is(err, ErrBadKey) {
		t.Errorf("DeleteNamespace: %v", err)
	}
	// A namespace of the longest length, and of every byte, works.
	k = tk(strings.Repeat("\xff", MaxNameLen), strings.Repeat("\x00", MaxNameLen), 1)
	mustSave(t, s, k, []byte("x"), time.Time{})
	mustFlush(t, s)
	if v, ok := load(t, s, k); !ok || string(v) != "x" {
		t.Fatal("longest names lost")
	}
	if n, err := s.DeleteNamespace(k.Namespace); n != 1 || err != nil {
		t.Fatalf("DeleteNamespace of 0xff...: %d %v", n, err)
	}
}

func TestBadSecret(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	s.Close()
	if err := writeSynced(dir+"/secret", []byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir, Logger: quiet()}); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("Open with a bad secret: %v", err)
	}
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "disk-example-")
	defer os.RemoveAll(dir)
	st, err := Open(Options{Dir: dir, Sync: SyncAlways})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	k := coalesce.TierKey{Namespace: "thumbs", Version: "v2", Key: coalesce.KeyFromBytes([16]byte{1})}
	_ = st.Save(context.Background(), k, coalesce.Outcome{Value: []byte("result")})
	r, _ := st.Load(context.Background(), k)
	fmt.Println(r.Found, string(r.Value))
	// Output: true result
}

func outcome(k coalesce.TierKey) coalesce.Outcome { return coalesce.Outcome{Value: valueOf(k)} }

func TestDamagedDirectory(t *testing.T) {
	// Counters that do not check are rebuilt from the records.
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	for i := range 50 {
		mustSave(t, s, tk("", "v", i), valueOf(tk("", "v", i)), time.Time{})
	}
	mustFlush(t, s)
	want := s.Stats()
	if err := s.db.Set(metaKey, []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, Options{Dir: dir})
	if got := s.Stats(); got.Entries != 50 || got.Bytes != want.Bytes || got.Generation != want.Generation {
		t.Fatalf("recounted %+v, want %+v", got, want)
	}
	s.Close()

	// A directory the engine cannot read is an error, not a panic.
	for name, damage := range map[string]func(dir string) error{
		"db is a file": func(dir string) error { return os.WriteFile(filepath.Join(dir, "db"), []byte("x"), 0o600) },
		"garbage manifest": func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "db", "CURRENT"), []byte("MANIFEST-000001\n"), 0o600); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "db", "MANIFEST-000001"), bytes.Repeat([]byte{0xee}, 4096), 0o600)
		},
		"dir is a file": func(dir string) error { return os.WriteFile(filepath.Join(dir, "store"), nil, 0o600) },
	} {
		dir := t.TempDir()
		if err := damage(dir); err != nil {
			t.Fatal(err)
		}
		target := dir
		if name == "dir is a file" {
			target = filepath.Join(dir, "store")
		}
		if s, err := Open(Options{Dir: target, Logger: quiet()}); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestPeek: Peek finds what Load finds, without a lease.
func TestPeek(t *testing.T) {
	s := openT(t, Options{})
	k := tk("ns", "v1", 1)
	mustSave(t, s, k, valueOf(k), time.Time{})
	mustFlush(t, s)
	r, err := s.Peek(ctx, k)
	if err != nil || !r.Found || !bytes.Equal(r.Value, valueOf(k)) || r.Lease != nil {
		t.Fatalf("Peek of a saved result = %+v, %v", r, err)
	}
	if r, err := s.Peek(ctx, tk("ns", "v1", 2)); err != nil || r.Found {
		t.Fatalf("Peek of nothing = %+v, %v", r, err)
	}
}
