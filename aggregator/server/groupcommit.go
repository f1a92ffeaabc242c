package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

// groupMaxRows bounds one group commit, so that an upload waits for at most
// about this many rows ahead of it.
const groupMaxRows = 20000

// committer is group commit: uploads that arrive while a transaction runs
// are merged into the next one. SQLite has one writer and a commit costs as
// much as hundreds of rows, so concurrent uploads share commits instead of
// queueing for one each; on ClickHouse they share an INSERT, and so a part.
// It has no goroutine of its own: a waiting upload leads the next commit
// for those queued, and every upload returns only after the commit holding
// it has returned, so a 200 still means durable. The probes' touches of a
// group are written after it, by its leader: last_seen may lag a 200.
type committer struct {
	st   store.Store
	log  *slog.Logger
	mu   sync.Mutex
	cond *sync.Cond
	busy bool      // a leader is committing
	q    []*upload // waiting, oldest first
}

type upload struct {
	ctx    context.Context
	rs     []result.Record
	touch  *store.Touch // the probe's, recorded once rs is stored; nil for an admin
	stored int
	err    error
	done   bool
}

func newCommitter(st store.Store, log *slog.Logger) *committer {
	c := &committer{st: st, log: log}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// append stores rs, in a transaction it may share with other uploads, and
// returns how many of its records were new. The touch, if any, is recorded
// after, with those of the other uploads.
func (c *committer) append(ctx context.Context, rs []result.Record, touch *store.Touch) (int, error) {
	u := &upload{ctx: ctx, rs: rs, touch: touch}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.q = append(c.q, u)
	for !u.done {
		if c.busy {
			c.cond.Wait()
			continue
		}
		c.lead()
	}
	return u.stored, u.err
}

// lead commits the oldest uploads, up to groupMaxRows (at least one), with
// c.mu held on entry and exit but not during the commit.
func (c *committer) lead() {
	n, rows := 0, 0
	for n < len(c.q) && (n == 0 || rows+len(c.q[n].rs) <= groupMaxRows) {
		rows += len(c.q[n].rs)
		n++
	}
	group := c.q[:n:n]
	c.q = c.q[n:]
	c.busy = true
	c.mu.Unlock()
	var stored []*upload
	defer func() {
		p := recover()
		c.mu.Lock()
		for _, u := range group {
			if p != nil && u.err == nil {
				u.err = fmt.Errorf("storing results: panic in the store: %v", p)
			}
			u.done = true
		}
		c.busy = false
		c.cond.Broadcast()
		if p != nil {
			panic(p)
		}
		// The touches go after the group is released, so that the next
		// group's commit runs beside them rather than after them.
		c.mu.Unlock()
		defer c.mu.Lock()
		c.touch(stored)
	}()
	stored = c.commit(group)
}

// commit stores a group, sets each upload's outcome and returns the
// uploads it stored.
func (c *committer) commit(group []*upload) []*upload {
	live := make([]*upload, 0, len(group))
	batches := make([][]result.Record, 0, len(group))
	for _, u := range group {
		// Its client is gone: leave it out rather than store what nobody
		// will be told about (a retry would find it anyway).
		if u.err = u.ctx.Err(); u.err == nil {
			live = append(live, u)
			batches = append(batches, u.rs)
		}
	}
	if len(live) == 0 {
		return nil
	}
	// One client hanging up must not roll back the others' records.
	stored, err := c.st.AppendBatches(context.WithoutCancel(live[0].ctx), batches)
	if err == nil && len(stored) != len(live) {
		err = fmt.Errorf("storing results: the store answered for %d uploads, not %d", len(stored), len(live))
	}
	for i, u := range live {
		if err != nil {
			u.err = err
			continue
		}
		u.stored = stored[i]
	}
	if err != nil {
		return nil
	}
	return live
}

// touch records the probes' uploads in one write: one per upload would
// cost ClickHouse a part each, as many as the results' group saves.
func (c *committer) touch(group []*upload) {
	var ts []store.Touch
	for _, u := range group {
		if u.touch != nil {
			ts = append(ts, *u.touch)
		}
	}
	if len(ts) == 0 {
		return
	}
	if err := c.st.TouchProbes(context.WithoutCancel(group[0].ctx), ts); err != nil {
		// The results are stored; last_seen is only informative.
		c.log.Warn("recording the probes' last upload", "probes", len(ts), "err", err)
	}
}
