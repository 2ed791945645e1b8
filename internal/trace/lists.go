package trace

// lists is a set of circular doubly linked lists of keys kept in one slice,
// addressed by int32 node indexes rather than pointers: the shared base of
// the exact LRU, SLRU and ARC. Nodes 0 to n-1 are the sentinels of lists 0
// to n-1; the sentinel's next is the list's MRU end and its prev the LRU
// end. Every other node is in exactly one list.
type lists struct {
	nodes []listNode
	size  []int // keys in each list
}

type listNode struct {
	key        uint64
	prev, next int32
	list       uint8
}

// newLists returns n empty lists with room for prealloc nodes.
func newLists(n int, prealloc int) lists {
	ls := lists{nodes: make([]listNode, n, prealloc+n), size: make([]int, n)}
	for l := range int32(n) {
		ls.nodes[l] = listNode{prev: l, next: l, list: uint8(l)}
	}
	return ls
}

// add returns a new node holding key, in no list yet.
func (ls *lists) add(key uint64) int32 {
	ls.nodes = append(ls.nodes, listNode{key: key})
	return int32(len(ls.nodes) - 1)
}

// back returns list l's LRU node, or l itself if the list is empty.
func (ls *lists) back(l int32) int32 { return ls.nodes[l].prev }

// move makes node i the MRU of list l, taking it from its current list.
func (ls *lists) move(i, l int32) {
	ls.unlink(i)
	ls.push(i, l)
}

func (ls *lists) unlink(i int32) {
	n := &ls.nodes[i]
	ls.nodes[n.prev].next = n.next
	ls.nodes[n.next].prev = n.prev
	ls.size[n.list]--
}

// push makes node i, which is in no list, the MRU of list l.
func (ls *lists) push(i, l int32) {
	head := ls.nodes[l].next
	ls.nodes[i].prev = l
	ls.nodes[i].next = head
	ls.nodes[i].list = uint8(l)
	ls.nodes[head].prev = i
	ls.nodes[l].next = i
	ls.size[l]++
}
