package store

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
)

// Config sizes a Store. The zero value of every field but MaxBytes and
// MaxEntries selects a documented default; at least one of those two must be
// positive.
type Config struct {
	// MaxBytes is the budget for everything the store allocates: the value
	// arenas, the index, the two ghosts' filters, the frequency sketch and
	// per-segment metadata. The store allocates it as it fills: an empty
	// store holds its metadata and small index parts, about 0.1% of the
	// budget. At most MaxBytesLimit. Zero means "derive from MaxEntries";
	// Config.MinBytes is the least that works.
	MaxBytes int64

	// MaxEntries, if positive, caps the number of entries. With MaxBytes
	// zero, the budget is derived from MaxEntries records of
	// ExpectedValueSize (plus a few segments of slack), so that the entry
	// count is what binds, as trace replay expects.
	MaxEntries int

	// MaxValueSize is the largest value Set accepts. Zero means 64 KiB, or,
	// for a store with under 4 MiB per shard, the largest value that fits in
	// a segment of 1/64 of a shard's arena (see Store.MaxValueSize). An
	// explicit value must fit in a segment of 1/8 of a shard's arena; records
	// never span segments.
	MaxValueSize int

	// (MaxEntries is at most MaxEntriesLimit.)

	// ExpectedValueSize sizes the index: the store holds about
	// MaxBytes/(record+index+ghosts+sketch bytes per entry) entries. Zero means 128.
	// With smaller values than expected the index fills before the arenas
	// and bounds the entry count; with larger ones the arenas bind.
	ExpectedValueSize int

	// Shards is the number of independently locked shards. Zero picks a
	// power of two up to 4×GOMAXPROCS, with at least about 1024 entries per
	// shard, so a small store has one shard. Any positive count is allowed.
	Shards int

	// The policy knobs, unexported so that tests and experiments can vary
	// them without widening the API. Zero values mean the defaults below.
	smallShare float64 // small FIFO's initial share of capacity; default 0.1
	promoteAt  int     // accesses a small entry needs to move to main; default 1
	ghostShare float64 // ghost capacity as a share of entries; default 0.9
	ghostBits  int     // Bloom bits per remembered key; default 12
	maxLoad    float64 // index load factor at full; default 0.8, at most 0.85
	noAdmit    bool    // plain S3-FIFO: no frequency sketch, no admission, no adaptation
	noAdapt    bool    // fixed small share and admission margin, no main ghost
}

// The upper bounds of a Config's sizes, far above any sensible setting, so
// that a typo or an unchecked flag fails with an error naming the limit
// instead of exhausting memory.
const (
	// MaxBytesLimit bounds Config.MaxBytes (1 TiB), and the budget that
	// Config.MaxEntries derives without it.
	MaxBytesLimit = 1 << 40
	// MaxEntriesLimit bounds Config.MaxEntries: MaxBytesLimit holds at
	// most that many entries at the 64 bytes each of the smallest records
	// with their index, ghost and sketch shares.
	MaxEntriesLimit = MaxBytesLimit / 64
)

// ErrTooLarge is returned, wrapped, by Set for a value longer than the
// store's MaxValueSize.
var ErrTooLarge = errors.New("store: value too large")

const (
	defaultMaxValueSize      = 64 << 10
	defaultExpectedValueSize = 128
	defaultMaxLoad           = 0.8
	defaultSmallShare        = 0.1
	defaultPromoteAt         = 1
	defaultGhostShare        = 0.9
	defaultGhostBits         = 12

	// keySize is the bytes of a key stored at the start of every record.
	keySize = 16
	// maxSegSize bounds the segment size unless MaxValueSize needs more:
	// eviction frees whole segments, so the segment size is what one unlucky
	// Set may have to scan.
	maxSegSize = 64 << 10
	// minSegs is the fewest segments a shard may have: one reserve, a head
	// for each queue and some to evict.
	minSegs = 8
	// targetSegs is how many segments a shard gets when the largest value
	// allows: the free reserve and the partly filled head and tail segments
	// of the queues are waste, a few segments' worth.
	targetSegs = 64
	// reserveSegs are kept free for records that eviction moves, so that
	// moving never has to evict in turn.
	reserveSegs = 1
	// segMetaBytes is the per-segment metadata: next, used, read, live
	// records and live bytes (int32), queue (uint8) and the header of the
	// segment's slice.
	segMetaBytes = 21 + 24
	// maxShardBytes bounds a shard's budget, so that its arena's
	// offsets fit 32 bits whatever the segment size (a segment of 64 KiB
	// + 19 B takes 2^17 of the offset space).
	maxShardBytes = 1 << 31
	// minEntriesPerShard keeps small stores on few shards, where the split
	// would otherwise cost hit ratio for no concurrency gain.
	minEntriesPerShard = 1024
	// minSmallShare and maxSmallShare bound the adaptation of the small
	// queue's share. Below 5% the LIRS traces lose (mean gap to OPT over
	// docs/HITRATIO.md 6.35 with 1%, 6.34 with 5%, 6.57 with 10%); above
	// 50% nothing was gained.
	minSmallShare = 0.05
	maxSmallShare = 0.5
)

// recordSize is the arena bytes of a record holding an n-byte value.
func recordSize(n int) int { return keySize + uvarintLen(uint64(n)) + n }

// uvarintLen is the length of binary.AppendUvarint's encoding of x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// layout is a validated Config turned into per-shard sizes.
type layout struct {
	shards       int
	maxValueSize int
	segSize      int // bytes per segment; every record fits in one
	segs         int // segments per shard
	slots        int // index slots per shard, when every part is at partSlots
	parts        int // index parts per shard, a power of two
	partSlots    int // slots a part grows to
	partShift    int // tagBits - log2(parts)
	segShift     uint
	segMask      uint32
	maxLoad      float64
	maxEntries   int // entries per shard
	leadSegs     int // the byte cleaner's lead, in segments
	ghostCap     int // keys the ghost remembers per shard
	capacity     int64

	sketchWords int // sketch words per shard when every part is at partSlots; 0 without admission

	// adapt is whether the small share and the admission margin adapt,
	// with a ghost of mainGhostCap keys dropped from main (else 0); small
	// starts at smallEntries and stays within [smallMin, smallMax].
	adapt              bool
	mainGhostCap       int
	smallEntries       int
	smallMin, smallMax int

	smallShare float64
	promoteAt  int
	ghostBits  int
}

func (c Config) withDefaults() Config {
	if c.ExpectedValueSize == 0 {
		c.ExpectedValueSize = defaultExpectedValueSize
	}
	if c.smallShare == 0 {
		c.smallShare = defaultSmallShare
	}
	if c.promoteAt == 0 {
		c.promoteAt = defaultPromoteAt
	}
	if c.ghostShare == 0 {
		c.ghostShare = defaultGhostShare
	}
	if c.ghostBits == 0 {
		c.ghostBits = defaultGhostBits
	}
	if c.maxLoad == 0 {
		c.maxLoad = defaultMaxLoad
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxBytes < 0:
		return fmt.Errorf("store: MaxBytes is %d; it must be positive, or zero with MaxEntries set", c.MaxBytes)
	case c.MaxBytes > MaxBytesLimit:
		return fmt.Errorf("store: MaxBytes is %d, above the limit of %d (MaxBytesLimit, 1 TiB)", c.MaxBytes, int64(MaxBytesLimit))
	case c.MaxEntries < 0:
		return fmt.Errorf("store: MaxEntries is %d; it must be positive, or zero for no entry cap", c.MaxEntries)
	case int64(c.MaxEntries) > MaxEntriesLimit:
		return fmt.Errorf("store: MaxEntries is %d, above the limit of %d (MaxEntriesLimit)", c.MaxEntries, int64(MaxEntriesLimit))
	case c.MaxBytes == 0 && c.MaxEntries == 0:
		return errors.New("store: no capacity: set MaxBytes (a byte budget) or MaxEntries (an entry count)")
	case c.MaxValueSize < 0:
		return fmt.Errorf("store: MaxValueSize is %d; it must be positive, or zero for the default", c.MaxValueSize)
	case c.ExpectedValueSize < 0:
		return fmt.Errorf("store: ExpectedValueSize is %d; it must be positive, or zero for the default of %d", c.ExpectedValueSize, defaultExpectedValueSize)
	case c.Shards < 0:
		return fmt.Errorf("store: Shards is %d; it must be positive, or zero to choose automatically", c.Shards)
	case c.smallShare < 0 || c.smallShare >= 1:
		return fmt.Errorf("store: small queue share %v; it must be in (0, 1)", c.smallShare)
	case c.promoteAt < 0 || c.promoteAt > freqMax+1:
		return fmt.Errorf("store: promotion threshold %d; it must be in [0, %d]", c.promoteAt, freqMax+1)
	case c.ghostShare < 0 || c.ghostBits < 0 || c.ghostBits > 64:
		return fmt.Errorf("store: ghost share %v and bits %d; want share ≥ 0 and bits in [0, 64]", c.ghostShare, c.ghostBits)
	case c.maxLoad < 0 || c.maxLoad > 0.85:
		return fmt.Errorf("store: index load %v; it must be in (0, 0.85]", c.maxLoad)
	}
	return nil
}

func (c Config) layout() (layout, error) {
	if err := c.validate(); err != nil {
		return layout{}, err
	}
	l, f := c.withDefaults().plan()
	if f.kind != planOK {
		return layout{}, f.err(c)
	}
	return l, nil
}

// MinBytes returns the least MaxBytes with which New succeeds for c's other
// fields, or -1 if there is none up to MaxBytesLimit (or another field is
// out of range: New's error then says which).
func (c Config) MinBytes() int64 {
	c.MaxBytes = MaxBytesLimit
	if c.validate() != nil {
		return -1
	}
	c = c.withDefaults()
	hi := int64(MaxBytesLimit)
	if c.Shards > 0 {
		// More would exceed a shard's offsets.
		hi = min(hi, int64(c.Shards)*maxShardBytes)
	}
	c.MaxBytes = hi
	if _, f := c.plan(); f.kind != planOK {
		return -1
	}
	// New succeeds for every MaxBytes from the least up to hi: plan keeps
	// the automatic shard count low enough for each shard to hold its
	// segments (TestMinBytes samples it).
	lo := int64(0)
	for hi-lo > 1 {
		c.MaxBytes = lo + (hi-lo)/2
		if _, f := c.plan(); f.kind == planOK {
			hi = c.MaxBytes
		} else {
			lo = c.MaxBytes
		}
	}
	return hi
}

// planFailure says why a configuration has no layout, with the figures its
// error gives; plan returns it instead of an error so that MinBytes's
// search allocates nothing.
type planFailure struct {
	kind       int
	n1, n2, n3 int64
	f          float64
}

const (
	planOK = iota
	planNoEntry
	planSlots
	planArena
	planValue
	planShards
	planLimit
)

func (f planFailure) err(c Config) error {
	var err error
	switch f.kind {
	case planNoEntry:
		err = fmt.Errorf("store: MaxBytes %d holds no entry of the expected %d-byte value (%.0f bytes each with index, ghosts and sketch)", c.MaxBytes, f.n1, f.f)
	case planSlots:
		return fmt.Errorf("store: %d entries per shard need %d index slots, above the limit of %d; raise Shards", f.n1, f.n2, maxSlots)
	case planArena:
		return fmt.Errorf("store: a shard's arena of %d bytes exceeds what 32-bit offsets address; raise Shards (now %d)", f.n1, f.n2)
	case planValue:
		err = fmt.Errorf("store: MaxValueSize %d does not fit: a shard's arena of %d bytes must hold %d segments of at least one such value; raise MaxBytes, lower Shards or lower MaxValueSize",
			c.MaxValueSize, f.n1, minSegs)
	case planShards:
		err = fmt.Errorf("store: MaxBytes %d is too small for %d shard(s): each needs at least %d bytes", c.MaxBytes, f.n1, f.n2)
	case planLimit:
		return fmt.Errorf("store: MaxEntries %d of the expected %d-byte value need %d bytes, above the limit of %d (MaxBytesLimit)", c.MaxEntries, c.withDefaults().ExpectedValueSize, f.n1, int64(MaxBytesLimit))
	}
	if c.MaxBytes == 0 {
		return err
	}
	if m := c.MinBytes(); m > 0 {
		return fmt.Errorf("%w; the minimum MaxBytes is %d", err, m)
	}
	return fmt.Errorf("%w; no MaxBytes up to MaxBytesLimit is enough", err)
}

// plan turns a validated configuration with defaults into a layout. The
// automatic shard count is the one of withShards' rules, halved while
// shards would be too small for their segments, down to the count that
// keeps each shard's offsets within 32 bits; so a larger budget never gets
// a layout that fails where a smaller one succeeded.
func (c Config) plan() (layout, planFailure) {
	rec := recordSize(c.ExpectedValueSize)
	ghostPerEntry := c.ghostShare * float64(c.ghostBits) / 8
	adapt := !c.noAdmit && !c.noAdapt
	perEntry := float64(rec) + 8/c.maxLoad + ghostPerEntry
	if !c.noAdmit {
		perEntry += float64(sketchBytes)
	}
	if adapt {
		perEntry += ghostPerEntry
	}
	total := float64(c.MaxEntries)
	if c.MaxBytes > 0 {
		total = float64(c.MaxBytes) / perEntry
		if c.MaxEntries > 0 {
			total = min(total, float64(c.MaxEntries))
		}
	}
	if total < 1 {
		return layout{}, planFailure{kind: planNoEntry, n1: int64(c.ExpectedValueSize), f: perEntry}
	}
	if c.Shards > 0 {
		return c.sized(c.Shards, total, rec, adapt)
	}
	shards := 1
	limit := 4 * runtime.GOMAXPROCS(0)
	for shards*2 <= limit && total/float64(shards*2) >= minEntriesPerShard {
		shards *= 2
	}
	// Offsets are 32-bit within a shard: big budgets need more shards.
	forced := 1
	for c.MaxBytes/int64(forced) > maxShardBytes || total*float64(rec)/float64(forced) > maxShardBytes {
		forced *= 2
	}
	shards = max(shards, forced)
	l, f := c.sized(shards, total, rec, adapt)
	for n := shards / 2; f.kind != planOK && n >= forced; n /= 2 {
		if l2, f2 := c.sized(n, total, rec, adapt); f2.kind == planOK {
			return l2, f2
		}
	}
	return l, f
}

// sized is plan for a given shard count.
func (c Config) sized(shards int, total float64, rec int, adapt bool) (layout, planFailure) {
	l := layout{
		shards:     shards,
		smallShare: c.smallShare,
		promoteAt:  c.promoteAt,
		ghostBits:  c.ghostBits,
		adapt:      adapt,
		maxLoad:    c.maxLoad,
	}
	l.maxEntries = int(math.Ceil(total / float64(shards)))
	if c.MaxEntries > 0 && c.MaxBytes == 0 {
		l.maxEntries = (c.MaxEntries + shards - 1) / shards
	}
	slots := max(int(math.Ceil(float64(l.maxEntries)/c.maxLoad)), l.maxEntries+1)
	if slots > maxSlots {
		return layout{}, planFailure{kind: planSlots, n1: int64(l.maxEntries), n2: int64(slots)}
	}
	// The index's parts: as few as keep each within maxPartSlots.
	parts := 1
	for (slots+parts-1)/parts > maxPartSlots {
		parts *= 2
	}
	l.parts, l.partSlots = parts, (slots+parts-1)/parts
	l.partShift = tagBits - bits.TrailingZeros(uint(parts))
	l.slots = parts * l.partSlots
	l.ghostCap = max(int(c.ghostShare*float64(l.maxEntries)), 1)
	if !c.noAdmit {
		l.sketchWords = parts * sketchBlocks(l.partSlots, c.maxLoad) * blockWords
	}
	l.smallEntries = int(math.Ceil(c.smallShare * float64(l.maxEntries)))
	l.smallMin, l.smallMax = l.smallEntries, l.smallEntries
	if adapt {
		l.mainGhostCap = l.ghostCap
		l.smallMin = min(max(int(minSmallShare*float64(l.maxEntries)), 1), l.smallEntries)
		l.smallMax = max(int(maxSmallShare*float64(l.maxEntries)), l.smallEntries)
	}
	fixed := l.fixedBytes()

	// Choose the segment size: small enough that eviction, which frees
	// whole segments, stays cheap and there are enough segments to share
	// between the queues; big enough for the largest value.
	var arena int64
	if c.MaxBytes > 0 {
		arena = c.MaxBytes/int64(shards) - fixed
	} else {
		arena = int64(l.maxEntries) * int64(rec)
	}
	seg := int(min(arena/targetSegs, maxSegSize))
	seg = max(seg, 4*rec, 64)
	if c.MaxValueSize > 0 {
		seg = max(seg, recordSize(c.MaxValueSize))
	} else if seg == maxSegSize {
		seg = recordSize(defaultMaxValueSize)
	}
	seg = allocSize(seg)
	l.segSize = seg
	l.segShift = uint(bits.Len(uint(seg - 1)))
	l.segMask = 1<<l.segShift - 1
	l.segs = int(max(arena, 0) / int64(seg+segMetaBytes))
	l.leadSegs = leadSegs(l.segs)
	if c.MaxBytes == 0 {
		// Slack for the reserve, the partly filled heads and tails, the
		// unused ends of segments and the cleaner's lead, so that
		// MaxEntries is what binds.
		perSeg := int64(seg - rec)
		l.segs = max(int((arena+perSeg-1)/perSeg)+reserveSegs+3, minSegs)
		l.leadSegs = leadSegs(l.segs)
		l.segs += l.leadSegs
	}
	if int64(l.segs)<<l.segShift > maxOffsets {
		return layout{}, planFailure{kind: planArena, n1: int64(l.segs) * int64(seg), n2: int64(shards)}
	}
	if l.segs < minSegs {
		if c.MaxValueSize > 0 && recordSize(c.MaxValueSize) > rec {
			return layout{}, planFailure{kind: planValue, n1: max(arena, 0)}
		}
		return layout{}, planFailure{kind: planShards, n1: int64(shards), n2: fixed + int64(minSegs*(seg+segMetaBytes))}
	}
	l.maxValueSize = c.MaxValueSize
	if l.maxValueSize == 0 {
		l.maxValueSize = defaultMaxValueSize
		for recordSize(l.maxValueSize) > seg {
			l.maxValueSize = seg - keySize - uvarintLen(uint64(seg))
		}
	}
	l.capacity = int64(shards) * (fixed + int64(l.segs)*int64(seg+segMetaBytes))
	if c.MaxBytes == 0 && l.capacity > MaxBytesLimit {
		return layout{}, planFailure{kind: planLimit, n1: l.capacity}
	}
	return l, planFailure{}
}

// allocSize rounds a segment's size up to what the Go heap allocates for
// it, so that the budget pays for no rounding it does not see: a power of
// two up to 32 KiB (each one a size class), whole 8 KiB pages above (a
// segment for a 64 KiB value, 65,555 bytes, would take 72 KiB anyway).
func allocSize(n int) int {
	if n <= 32<<10 {
		return 1 << bits.Len(uint(n-1))
	}
	return (n + 8<<10 - 1) &^ (8<<10 - 1)
}

// fixedBytes is a shard's memory besides its segments and their metadata,
// at its largest: index parts, ghosts and sketch.
func (l *layout) fixedBytes() int64 {
	return int64(l.slots)*8 + int64(l.parts)*partBytes + ghostBytes(l.ghostCap, l.ghostBits) + ghostBytes(l.mainGhostCap, l.ghostBits) +
		int64(l.sketchWords)*8
}

// leadSegs is how far ahead of the reserve, in segments, the byte cleaner
// keeps a shard of segs segments (see shard.insert): a segment per 128, at
// least 1 and at most 4. The tails being processed and the heads being
// filled each hold up to a segment that counts in the lead before it can
// be reused, so with a short lead a store still finds only the reserve now
// and then and drains the rest of a segment itself: with every entry of a
// 1 GiB store hot (1,632 segments a shard), 400,000 Sets processed up to
// 529 records each with a lead of 2 segments, at most 18 with 3 or 4 (and
// with the old cleaner, 265 of them drained 200 to 1,100 records). The
// lead costs up to 1/128 of a shard's entries (a full 1 GiB store:
// 6,570,213 → 6,564,104 with 3, 6,560,069 with 4), which small shards
// cannot spare (TestFillHoldsBudget, 64 segments a shard: 174.0 B per
// entry with a lead of 2, 171.1 with 1), and where a segment is a 64th of
// the shard.
func leadSegs(segs int) int {
	return min(max(segs/128, 1), 4)
}
