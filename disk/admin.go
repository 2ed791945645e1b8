package disk

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// DeleteNamespace deletes every record of namespace ns, of every version,
// with one range delete (the space returns as the engine compacts), and
// returns how many there were.
func (s *Store) DeleteNamespace(ns string) (int64, error) {
	if err := checkName("namespace", ns); err != nil {
		return 0, err
	}
	p := nsPrefix(ns)
	return s.deleteRange(p, prefixEnd(p))
}

// DeleteVersion deletes every record of one version of namespace ns.
func (s *Store) DeleteVersion(ns, version string) (int64, error) {
	if err := checkName("namespace", ns); err != nil {
		return 0, err
	}
	if err := checkName("version", version); err != nil {
		return 0, err
	}
	p := versionPrefix(ns, version)
	return s.deleteRange(p, prefixEnd(p))
}

// DeleteOtherVersions deletes every record of namespace ns but those of
// version keep: what to run after a version bump.
func (s *Store) DeleteOtherVersions(ns, keep string) (int64, error) {
	if err := checkName("namespace", ns); err != nil {
		return 0, err
	}
	if err := checkName("version", keep); err != nil {
		return 0, err
	}
	p, k := nsPrefix(ns), versionPrefix(ns, keep)
	n1, err := s.deleteRange(p, k)
	if err != nil {
		return n1, err
	}
	n2, err := s.deleteRange(prefixEnd(k), prefixEnd(p))
	return n1 + n2, err
}

func (s *Store) deleteRange(start, end []byte) (int64, error) {
	if bytes.Compare(start, end) >= 0 {
		return 0, nil
	}
	r := &request{op: opRange, rk: start, end: end}
	if err := s.sendWait(r); err != nil {
		return 0, err
	}
	return r.count, nil
}

// NamespaceInfo counts the records of one version of a namespace.
type NamespaceInfo struct {
	Namespace, Version string
	Entries            int64
	// Bytes is the records' accounted size.
	Bytes int64
}

// Namespaces lists the namespaces and versions in the store with their
// record counts, sorted. It reads every record key: an administrative
// call, not one for a request path.
func (s *Store) Namespaces(ctx context.Context) ([]NamespaceInfo, error) {
	var out []NamespaceInfo
	err := s.scan(ctx, func(ns, version string, rk, raw []byte) {
		if n := len(out); n == 0 || out[n-1].Namespace != ns || out[n-1].Version != version {
			out = append(out, NamespaceInfo{Namespace: ns, Version: version})
		}
		out[len(out)-1].Entries++
		out[len(out)-1].Bytes += cost(rk, len(raw))
	})
	// Keys sort by length-prefixed names; list by the names themselves.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Version < out[j].Version
	})
	return out, err
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	OK, Corrupt, Expired int64
	// BadKeys counts keys in the record range that are not record keys.
	BadKeys int64
	// Namespaces has the same counts per namespace and version.
	Namespaces []VerifyCount
}

// VerifyCount is Verify's count for one version of a namespace.
type VerifyCount struct {
	Namespace, Version   string
	OK, Corrupt, Expired int64
}

// Verify reads every record and checks its checksum (the engine checks
// its own blocks' as it reads them), and reports the counts. It changes
// nothing: Load deletes the corrupt records it meets. It stops early with
// ctx's error.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	now := time.Now().UnixNano()
	err := s.scanAll(ctx, func(rk, raw []byte) {
		ns, version, _, ok := parseRecordKey(rk)
		if !ok {
			rep.BadKeys++
			return
		}
		if n := len(rep.Namespaces); n == 0 || rep.Namespaces[n-1].Namespace != ns || rep.Namespaces[n-1].Version != version {
			rep.Namespaces = append(rep.Namespaces, VerifyCount{Namespace: ns, Version: version})
		}
		c := &rep.Namespaces[len(rep.Namespaces)-1]
		rec, err := decodeRecord(rk, raw)
		switch {
		case err != nil:
			rep.Corrupt++
			c.Corrupt++
		case rec.expires != 0 && now >= rec.expires:
			rep.Expired++
			c.Expired++
		default:
			rep.OK++
			c.OK++
		}
	})
	sort.Slice(rep.Namespaces, func(i, j int) bool {
		a, b := rep.Namespaces[i], rep.Namespaces[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Version < b.Version
	})
	return rep, err
}

func (s *Store) scan(ctx context.Context, fn func(ns, version string, rk, raw []byte)) error {
	return s.scanAll(ctx, func(rk, raw []byte) {
		if ns, version, _, ok := parseRecordKey(rk); ok {
			fn(ns, version, rk, raw)
		}
	})
}

// scanAll calls fn with every key and value of the record range, from a
// snapshot: writes go on meanwhile.
func (s *Store) scanAll(ctx context.Context, fn func(rk, raw []byte)) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRecord}, UpperBound: []byte{prefixRecord + 1}})
	if err != nil {
		return fmt.Errorf("disk: reading the store: %w", err)
	}
	var n int
	for it.First(); it.Valid(); it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("disk: reading the store: %w", err)
		}
		fn(it.Key(), v)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("disk: reading the store: %w", err)
	}
	return nil
}
