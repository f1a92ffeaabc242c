package catcher

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/hitlist"
	"github.com/catchmap/catchmap/sweep/payload"
)

// Store keeps the replies a catcher caught until the driver collects
// them: SpoolStore on disk in the agents' segment spool, across a restart;
// MemStore in memory.
type Store interface {
	// Append keeps a batch of replies, of any sweeps: all of them, or
	// none with an error.
	Append(rs []control.Reply) error
	// Replies calls fn with each kept reply of the sweep, in the order
	// they were appended, and stops at fn's first error.
	Replies(id payload.ID, fn func(control.Reply) error) error
	// Forget drops what is kept for the sweep.
	Forget(id payload.ID) error
}

// DefaultMaxReplies bounds a MemStore: 4M replies, about 200 MB, enough
// for a sweep of every /24 that answers on today's Internet caught at
// one site.
const DefaultMaxReplies = 4 << 20

// ErrFull is a store at its bound.
var ErrFull = errors.New("the catcher's store is full: collect the sweeps (sweep run does) or raise catch --max-replies")

// MemStore keeps replies in memory, compactly, up to a bound on their
// number.
type MemStore struct {
	max int

	mu    sync.Mutex
	n     int
	by    map[payload.ID][]kept
	sites map[string]string // interned site codes
}

// kept is a reply, less what the sweep and catcher say.
type kept struct {
	target, from   uint32
	sent, received int64 // Unix nanoseconds
	sender         string
	class          uint8
}

// NewMemStore returns a store of at most max replies.
func NewMemStore(max int) *MemStore {
	return &MemStore{max: max, by: map[payload.ID][]kept{}, sites: map[string]string{}}
}

// Append implements Store.
func (m *MemStore) Append(rs []control.Reply) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n+len(rs) > m.max {
		return fmt.Errorf("%w (%d replies)", ErrFull, m.max)
	}
	for _, r := range rs {
		class := -1
		for i, c := range control.Classes {
			if c == r.Class {
				class = i
			}
		}
		if class < 0 || !r.Target.Is4() || !r.From.Is4() {
			return fmt.Errorf("store: reply %+v: class or addresses invalid", r)
		}
		sender, ok := m.sites[r.Sender]
		if !ok {
			sender = r.Sender
			m.sites[sender] = sender
		}
		m.by[r.Sweep] = append(m.by[r.Sweep], kept{target: hitlist.U32(r.Target), from: hitlist.U32(r.From),
			sent: r.Sent.UnixNano(), received: r.Received.UnixNano(), sender: sender, class: uint8(class)})
	}
	m.n += len(rs)
	return nil
}

// Replies implements Store. It holds no lock while fn runs: appends made
// meanwhile are not seen.
func (m *MemStore) Replies(id payload.ID, fn func(control.Reply) error) error {
	m.mu.Lock()
	ks := m.by[id]
	m.mu.Unlock()
	for _, k := range ks {
		r := control.Reply{Sweep: id, Class: control.Classes[k.class], Target: hitlist.Addr(k.target), From: hitlist.Addr(k.from),
			Sender: k.sender, Sent: time.Unix(0, k.sent).UTC(), Received: time.Unix(0, k.received).UTC()}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Forget implements Store.
func (m *MemStore) Forget(id payload.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n -= len(m.by[id])
	delete(m.by, id)
	return nil
}
