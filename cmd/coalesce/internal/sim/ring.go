package sim

import (
	"slices"
	"strconv"
)

// ring is a consistent-hash ring with virtual nodes: each of n nodes owns
// the arcs ending at its vnodes points, and a hash belongs to the first
// point at or after it, wrapping around. It is what the user's design uses
// to pick a queue, immutable after construction.
type ring struct {
	points []uint64
	owner  map[uint64]int
}

func newRing(nodes, vnodes int) *ring {
	r := &ring{owner: make(map[uint64]int, nodes*vnodes)}
	for n := range nodes {
		for v := range vnodes {
			p := mix64(fnv64a([]byte("node-" + strconv.Itoa(n) + "-vnode-" + strconv.Itoa(v))))
			if _, taken := r.owner[p]; taken {
				continue // a collision of 64-bit points; the first owner keeps it
			}
			r.owner[p] = n
			r.points = append(r.points, p)
		}
	}
	slices.Sort(r.points)
	return r
}

// node returns the node that owns hash h.
func (r *ring) node(h uint64) int {
	i, _ := slices.BinarySearch(r.points, h)
	if i == len(r.points) {
		i = 0
	}
	return r.owner[r.points[i]]
}

// fnv64a is FNV-1a: the user hashes inputs for both the ring and the cache
// key, and a fast non-cryptographic hash is what such designs use.
func fnv64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer; FNV of short similar strings clusters
// on the ring without it.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
