package maps

import "github.com/catchmap/catchmap/maps/summary"

// rttArena keeps the RTTs that summaries bring, for every tally of a
// Builder, in a few large chunks instead of one growing slice per tally:
// a summary's RTTs are copied once, and a window of a million results
// costs a handful of allocations rather than tens of thousands. A tally's
// RTTs are a chain of segments (siteTally.head to siteTally.tail), kept in
// blocks too, so that neither ever grows by copying.
type rttArena struct {
	chunks [][]float64
	segs   [][]rttSeg // blocks of segBlock
	nsegs  int32      // segment 0 is unused: 0 means "none" in a tally
}

// rttSeg is a run of RTTs in a chunk; next is the tally's following
// segment, 0 for none.
type rttSeg struct {
	chunk, off, n, next int32
}

// rttChunk is the size of a chunk in RTTs (512 KiB) and segBlock that of a
// block of segments (64 KiB): large enough to make allocations rare, small
// enough not to waste much on a small window.
const (
	rttChunk = 1 << 16
	segShift = 12
	segBlock = 1 << segShift
)

func (a *rttArena) seg(i int32) *rttSeg { return &a.segs[i>>segShift][i&(segBlock-1)] }

// add appends the kept RTTs of rtts to t's chain.
func (a *rttArena) add(t *siteTally, rtts []float64) {
	if len(rtts) == 0 {
		return
	}
	if len(a.chunks) == 0 || cap(a.chunks[len(a.chunks)-1])-len(a.chunks[len(a.chunks)-1]) < len(rtts) {
		a.chunks = append(a.chunks, make([]float64, 0, max(rttChunk, len(rtts))))
	}
	ci := len(a.chunks) - 1
	off := len(a.chunks[ci])
	c := a.chunks[ci][:cap(a.chunks[ci])]
	k, kept := off, true
	for _, rtt := range rtts {
		c[k] = rtt
		k++
		kept = kept && summary.KeptRTT(rtt)
	}
	if !kept {
		// A store may pass RTTs that Add would not keep: drop them.
		k = off
		for _, rtt := range rtts {
			if summary.KeptRTT(rtt) {
				c[k] = rtt
				k++
			}
		}
	}
	a.chunks[ci] = c[:k]
	n := int32(k - off)
	if n == 0 {
		return
	}
	// The tally's last segment may end where this one starts (one probe's
	// summaries in a row): grow it instead of chaining another. Only the
	// newest segment can end at a chunk's end: test that first, so that
	// other tallies' segments are not read (a cache miss each).
	if t.tail != 0 && t.tail == a.nsegs-1 {
		if s := a.seg(t.tail); s.chunk == int32(ci) && int(s.off+s.n) == off {
			s.n += n
			return
		}
	}
	if a.nsegs == 0 {
		a.nsegs = 1
	}
	if int(a.nsegs>>segShift) == len(a.segs) {
		a.segs = append(a.segs, make([]rttSeg, segBlock))
	}
	i := a.nsegs
	a.nsegs++
	*a.seg(i) = rttSeg{chunk: int32(ci), off: int32(off), n: n}
	if t.tail == 0 {
		t.head = i
	} else {
		a.seg(t.tail).next = i
	}
	t.tail = i
}

// appendRTTs appends every RTT of t, those from Add and those from
// summaries, to dst.
func (a *rttArena) appendRTTs(dst []float64, t *siteTally) []float64 {
	dst = append(dst, t.rtts...)
	for i := t.head; i != 0; {
		s := a.seg(i)
		dst = append(dst, a.chunks[s.chunk][s.off:s.off+s.n]...)
		i = s.next
	}
	return dst
}
