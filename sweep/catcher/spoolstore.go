package catcher

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/probe/spool"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/payload"
)

// SpoolStore keeps replies on disk, in the agents' segment spool: one spool
// a sweep, in a directory of its own under dir, so that what a catcher
// caught survives its restart and a sweep is forgotten by removing its
// directory. Each spool is bounded by maxBytes of disk.
type SpoolStore struct {
	log      *slog.Logger
	dir      string
	maxBytes int64

	mu     sync.Mutex
	spools map[payload.ID]*spool.Typed[control.Reply]
}

// NewSpoolStore keeps replies under dir, which it creates (owner only).
func NewSpoolStore(log *slog.Logger, dir string, maxBytes int64) (*SpoolStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("catcher spool %s: %w", dir, err)
	}
	return &SpoolStore{log: log, dir: dir, maxBytes: maxBytes, spools: map[payload.ID]*spool.Typed[control.Reply]{}}, nil
}

// open returns the spool of sweep id, opening it (from a run before a
// restart, too) when create or when it is on disk; nil when there is none.
func (s *SpoolStore) open(id payload.ID, create bool) (*spool.Typed[control.Reply], error) {
	if sp, ok := s.spools[id]; ok {
		return sp, nil
	}
	dir := filepath.Join(s.dir, id.String())
	if !create {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	// A spool's metrics name the sweep nowhere: a private registry keeps a
	// long-lived catcher's series from growing with every sweep. Drops are
	// logged, with counts.
	sp, err := spool.Open(s.log.With("sweep", id.String()), prometheus.NewRegistry(), dir,
		spool.Options{MaxBytes: s.maxBytes, Subsystem: "sweep"})
	if err != nil {
		return nil, fmt.Errorf("catcher spool of sweep %s: %w", id, err)
	}
	t := spool.NewTyped(sp, spool.JSON[control.Reply]{})
	s.spools[id] = t
	return t, nil
}

// Append implements Store: each sweep's replies are durable when it
// returns.
func (s *SpoolStore) Append(rs []control.Reply) error {
	by := map[payload.ID][]control.Reply{}
	for _, r := range rs {
		by[r.Sweep] = append(by[r.Sweep], r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, batch := range by {
		sp, err := s.open(id, true)
		if err != nil {
			return err
		}
		if err := sp.Put(batch); err != nil {
			return fmt.Errorf("catcher spool of sweep %s: %w", id, err)
		}
	}
	return nil
}

// Replies implements Store.
func (s *SpoolStore) Replies(id payload.ID, fn func(control.Reply) error) error {
	s.mu.Lock()
	sp, err := s.open(id, false)
	var b *spool.TypedBatch[control.Reply]
	if err == nil && sp != nil && sp.Len() > 0 {
		b, err = sp.Peek(sp.Len())
	}
	s.mu.Unlock()
	if err != nil || b == nil {
		return err
	}
	for _, r := range b.Records {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Forget implements Store.
func (s *SpoolStore) Forget(id payload.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if sp, ok := s.spools[id]; ok {
		err = sp.Close()
		delete(s.spools, id)
	}
	return errors.Join(err, os.RemoveAll(filepath.Join(s.dir, id.String())))
}

// Close closes every spool.
func (s *SpoolStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for id, sp := range s.spools {
		err = errors.Join(err, sp.Close())
		delete(s.spools, id)
	}
	return err
}
