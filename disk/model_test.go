package disk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce"
)

// TestModel runs random operations against the store and a map, with
// restarts, and checks after each step that they agree: every Load, and
// the store's counters against the map's size (the counters are kept by
// the store, not recomputed, so any slip in them shows here).
func TestModel(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			dir := t.TempDir()
			mode := SyncMode(seed % 2)
			s := openT(t, Options{Dir: dir, Sync: mode})
			model := map[coalesce.TierKey][]byte{}
			names := []string{"", "a", "ab", "b"}
			versions := []string{"v1", "v2", ""}
			key := func() coalesce.TierKey {
				return tk(names[rng.IntN(len(names))], versions[rng.IntN(len(versions))], rng.IntN(40))
			}
			for step := range 1500 {
				switch op := rng.IntN(100); {
				case op < 45:
					k := key()
					v := fmt.Appendf(nil, "%d-%d", step, rng.Uint64())
					mustSave(t, s, k, v, time.Time{})
					model[k] = v
				case op < 55:
					k := key()
					existed, err := s.Delete(k)
					_, want := model[k]
					if err != nil {
						t.Fatal(err)
					}
					// A Save still queued (group commit) is applied before
					// the Delete, in order, so the model's answer holds.
					if existed != want {
						t.Fatalf("step %d: Delete %v: existed %v, model %v", step, k, existed, want)
					}
					delete(model, k)
				case op < 58:
					ns, v := names[rng.IntN(len(names))], versions[rng.IntN(len(versions))]
					n, err := s.DeleteVersion(ns, v)
					want := 0
					for k := range model {
						if k.Namespace == ns && k.Version == v {
							delete(model, k)
							want++
						}
					}
					if err != nil || n != int64(want) {
						t.Fatalf("step %d: DeleteVersion(%q, %q) = %d, %v; model %d", step, ns, v, n, err, want)
					}
				case op < 60:
					ns, keep := names[rng.IntN(len(names))], versions[rng.IntN(len(versions))]
					n, err := s.DeleteOtherVersions(ns, keep)
					want := 0
					for k := range model {
						if k.Namespace == ns && k.Version != keep {
							delete(model, k)
							want++
						}
					}
					if err != nil || n != int64(want) {
						t.Fatalf("step %d: DeleteOtherVersions(%q, %q) = %d, %v; model %d", step, ns, keep, n, err, want)
					}
				case op < 61:
					ns := names[rng.IntN(len(names))]
					n, err := s.DeleteNamespace(ns)
					want := 0
					for k := range model {
						if k.Namespace == ns {
							delete(model, k)
							want++
						}
					}
					if err != nil || n != int64(want) {
						t.Fatalf("step %d: DeleteNamespace(%q) = %d, %v; model %d", step, ns, n, err, want)
					}
				case op < 62:
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = openT(t, Options{Dir: dir, Sync: mode})
				case op < 70:
					var ks []coalesce.TierKey
					for range 5 {
						ks = append(ks, key())
					}
					s.Touched(ks)
				default:
					mustFlush(t, s)
					k := key()
					v, ok := load(t, s, k)
					want, wantOK := model[k]
					if ok != wantOK || !bytes.Equal(v, want) {
						t.Fatalf("step %d: Load %+v = %q %v; model %q %v", step, k, v, ok, want, wantOK)
					}
				}
				if step%100 == 99 {
					mustFlush(t, s)
					if st := s.Stats(); st.Entries != int64(len(model)) {
						t.Fatalf("step %d: %d entries, model %d", step, st.Entries, len(model))
					}
				}
			}
			mustFlush(t, s)
			var scanned int64
			list, err := s.Namespaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range list {
				scanned += n.Bytes
			}
			// Touches rewrite records; the accounted bytes must still be
			// exactly those of the records there.
			if st := s.Stats(); st.Entries != int64(len(model)) || st.Bytes != scanned {
				t.Fatalf("end: stats %+v; model %d entries, scan %d bytes", st, len(model), scanned)
			}
		})
	}
}
