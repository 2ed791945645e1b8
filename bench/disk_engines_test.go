package bench

// The disk tier's engine choice (issue #10): pebble (an LSM tree) against
// bbolt (a copy-on-write B+tree) on the tier's pattern, measured in one
// run on one machine. Records are shaped as the tier writes them: a
// 21-byte key (prefix, namespace "", version "v1", 16-byte hash) and a
// 138-byte value (header, 128-byte result, checksum).
//
//	cd bench && go test -run '^$' -bench 'DiskEngines/.*/(write|get)' -benchtime 2000x -timeout 30m
//	cd bench && go test -run '^$' -bench 'DiskEngines/.*/open' -benchtime 20x
//
// The 1 M-record stores are built once under $TMPDIR/coalesce-engines-*
// and reused by later runs (delete them to rebuild).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coalesce-go/coalesce/internal/benchutil"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	bolt "go.etcd.io/bbolt"
)

const (
	engineRecords  = 1_000_000
	engineValueLen = 138
	engineBatch    = 64 // writes gathered in ~2 ms at 32k writes/s
)

type engine interface {
	put(keys, values [][]byte, sync bool) error
	get(k []byte) (bool, error)
	close() error
}

type engineKind struct {
	name string
	open func(dir string) (engine, error)
}

var engineKinds = []engineKind{
	{"pebble", openPebble},
	{"bbolt", openBolt},
}

type pebbleEngine struct{ db *pebble.DB }

// pebbleCacheBytes is the block cache the disk tier gives pebble. (bbolt
// reads through the page cache, by mmap.)
const pebbleCacheBytes = 64 << 20

func openPebble(dir string) (engine, error) {
	cache := pebble.NewCache(pebbleCacheBytes)
	defer cache.Unref()
	o := &pebble.Options{FS: vfs.Default, FormatMajorVersion: pebble.FormatNewest, Logger: quietPebble{}, Cache: cache}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, o)
	if err != nil {
		return nil, err
	}
	return &pebbleEngine{db}, nil
}

func (e *pebbleEngine) put(keys, values [][]byte, sync bool) error {
	b := e.db.NewBatch()
	defer b.Close()
	for i := range keys {
		if err := b.Set(keys[i], values[i], nil); err != nil {
			return err
		}
	}
	if sync {
		return b.Commit(pebble.Sync)
	}
	return b.Commit(pebble.NoSync)
}

func (e *pebbleEngine) get(k []byte) (bool, error) {
	_, closer, err := e.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

func (e *pebbleEngine) close() error { return e.db.Close() }

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)      {}
func (quietPebble) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (quietPebble) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

type boltEngine struct{ db *bolt.DB }

var boltBucket = []byte("r")

func openBolt(dir string) (engine, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltEngine{db}, nil
}

func (e *boltEngine) put(keys, values [][]byte, sync bool) error {
	e.db.NoSync = !sync
	return e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range keys {
			if err := b.Put(keys[i], values[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) get(k []byte) (bool, error) {
	var found bool
	err := e.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(boltBucket).Get(k) != nil
		return nil
	})
	return found, err
}

func (e *boltEngine) close() error { return e.db.Close() }

// engineKey is record i's key: the tier's prefix and a hash-like 16 bytes,
// so that inserts land at random places, as the tier's do.
func engineKey(i uint64) []byte {
	k := []byte{'r', 0, 2, 'v', '1'}
	k = binary.BigEndian.AppendUint64(k, engineMix(i))
	return binary.BigEndian.AppendUint64(k, engineMix(i^0xdeadbeef))
}

func engineMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func engineValue(rng *rand.Rand) []byte {
	v := make([]byte, 0, engineValueLen+8)
	for len(v) < engineValueLen {
		v = binary.LittleEndian.AppendUint64(v, rng.Uint64())
	}
	return v[:engineValueLen]
}

// builtStore returns the directory of a store of engineRecords records,
// building it on first use.
func builtStore(b *testing.B, kind engineKind) string {
	dir := filepath.Join(os.TempDir(), "coalesce-engines-"+kind.name+"-1M")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	start := time.Now()
	e, err := kind.open(dir)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const chunk = 10_000
	keys, values := make([][]byte, chunk), make([][]byte, chunk)
	for i := uint64(0); i < engineRecords; i += chunk {
		for j := range chunk {
			keys[j], values[j] = engineKey(i+uint64(j)), engineValue(rng)
		}
		if err := e.put(keys, values, i+chunk >= engineRecords); err != nil {
			b.Fatal(err)
		}
	}
	if p, ok := e.(*pebbleEngine); ok {
		// Settle the tree as a long-running store would be: flushed and
		// compacted, so that the size counts records, not the log.
		if err := p.db.Compact(b.Context(), []byte{0}, []byte{0xff}, true); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: built %d records in %v", kind.name, engineRecords, time.Since(start).Round(time.Millisecond))
	return dir
}

func BenchmarkDiskEngines(b *testing.B) {
	for _, kind := range engineKinds {
		// Writes into a fresh store: each synced, or gathered in batches
		// of engineBatch with one sync each (the tier's group commit).
		for _, batch := range []int{1, engineBatch} {
			name := "write-sync-each"
			if batch > 1 {
				name = fmt.Sprintf("write-group-%d", batch)
			}
			b.Run(kind.name+"/"+name, func(b *testing.B) {
				e, err := kind.open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer e.close()
				rng := rand.New(rand.NewPCG(3, 4))
				keys, values := make([][]byte, batch), make([][]byte, batch)
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					for j := range batch {
						keys[j], values[j] = engineKey(uint64(i+j)+1<<40), engineValue(rng)
					}
					if err := e.put(keys, values, true); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
		}
		// Point reads on a store of a million records, present and absent
		// (most of the tier's Loads: a memory miss is usually a disk miss
		// too), and the store's size and open time.
		b.Run(kind.name+"/get-1M", func(b *testing.B) {
			dir := builtStore(b, kind)
			perRecord := float64(benchutil.DirBytes(b, dir)) / engineRecords
			e, err := kind.open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer e.close()
			for _, present := range []bool{true, false} {
				name := "hit"
				if !present {
					name = "miss"
				}
				b.Run(name, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(5, 6))
					// Warm the page cache and the engine's caches as a
					// running store would have them.
					for range 100_000 {
						if _, err := e.get(engineKey(uint64(rng.IntN(engineRecords)))); err != nil {
							b.Fatal(err)
						}
					}
					lat := make([]time.Duration, b.N)
					b.ResetTimer()
					for i := range b.N {
						k := uint64(rng.IntN(engineRecords))
						if !present {
							k += 1 << 41
						}
						key := engineKey(k)
						t0 := time.Now()
						found, err := e.get(key)
						lat[i] = time.Since(t0)
						if err != nil || found != present {
							b.Fatalf("get %d: %v, found %v", k, err, found)
						}
					}
					benchutil.ReportLatency(b, lat)
					b.ReportMetric(perRecord, "disk-B/record")
				})
			}
		})
		b.Run(kind.name+"/open-1M", func(b *testing.B) {
			dir := builtStore(b, kind)
			for range b.N {
				e, err := kind.open(dir)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
