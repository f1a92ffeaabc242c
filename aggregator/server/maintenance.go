package server

import (
	"context"
	"time"
)

// Maintenance runs beside serving: retention and the store's compaction.
const (
	retentionEvery  = time.Hour
	compactionEvery = time.Minute
)

// compactor is a store that rolls its map summaries up to longer spans as
// time passes (both stores do); the aggregator drives it.
type compactor interface {
	Compact(ctx context.Context, now time.Time) error
}

// maintain runs retention and compaction until ctx ends.
func (s *Server) maintain(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.retain(ctx, retentionEvery)
	}()
	s.compact(ctx, compactionEvery)
	<-done
}

// every calls fn now and then every period, until ctx ends.
func every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retain deletes results older than retention_days now and then every
// period, until ctx ends. Retention 0 keeps everything.
func (s *Server) retain(ctx context.Context, period time.Duration) {
	if s.cfg.RetentionDays == 0 {
		return
	}
	every(ctx, period, s.deleteOld)
}

func (s *Server) deleteOld(ctx context.Context) {
	before := s.now().Add(-time.Duration(s.cfg.RetentionDays) * 24 * time.Hour)
	n, err := s.st.DeleteBefore(ctx, before)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("retention: deleting old results failed; will retry", "before", before, "err", err)
		}
		return
	}
	s.m.retained.Add(float64(n))
	if n > 0 {
		s.log.Info("retention: deleted old results", "count", n, "before", before.Format(time.RFC3339))
	}
}

// compact rolls the store's summaries up now and then every period, until
// ctx ends, if the store keeps any.
func (s *Server) compact(ctx context.Context, period time.Duration) {
	c, ok := s.st.(compactor)
	if !ok {
		return
	}
	every(ctx, period, func(ctx context.Context) {
		if err := c.Compact(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Warn("compacting map summaries failed; maps read finer ones meanwhile; will retry", "err", err)
		}
	})
}
