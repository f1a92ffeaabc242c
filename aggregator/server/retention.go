package server

import (
	"context"
	"time"
)

// retain deletes results older than retention_days now and then every
// period, until ctx ends. Retention 0 keeps everything.
func (s *Server) retain(ctx context.Context, every time.Duration) {
	if s.cfg.RetentionDays == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.deleteOld(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
