package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/bgp"
)

// RunBGP runs the BGP listener configured by c, recording events into st,
// until ctx ends. With no prefixes configured it records those of the
// plan's targets, re-read at most every planCacheTTL.
func RunBGP(ctx context.Context, log *slog.Logger, st store.Store, c *config.BGP) error {
	if !c.Enabled() {
		return nil
	}
	lc := bgp.ListenerConfig{ListenPort: c.Port(), PeerAS: c.PeerAS, LocalAS: c.LocalAS, Active: c.Mode == config.BGPActive, PeerPort: c.PeerPort}
	var err error
	if lc.Peer, err = netip.ParseAddr(c.Peer); err != nil {
		return fmt.Errorf("bgp.peer: %w", err)
	}
	if lc.RouterID, err = netip.ParseAddr(c.RouterID); err != nil {
		return fmt.Errorf("bgp.router_id: %w", err)
	}
	if c.ListenAddress != "" {
		if lc.ListenAddress, err = netip.ParseAddr(c.ListenAddress); err != nil {
			return fmt.Errorf("bgp.listen_address: %w", err)
		}
	}
	prefixes := planPrefixes(log, st)
	if len(c.Prefixes) > 0 {
		ps, err := bgp.ParsePrefixes(c.Prefixes)
		if err != nil {
			return fmt.Errorf("bgp.prefixes: %w", err)
		}
		prefixes = func(context.Context) (*bgp.Prefixes, error) { return ps, nil }
	}
	return bgp.NewListener(log.With("component", "bgp"), lc, prefixes, st.AddEvents).Run(ctx)
}

// planCacheTTL bounds how often the listener reads the plan.
const planCacheTTL = 10 * time.Second

// planPrefixes returns the anycast prefixes of every target of the plan,
// cached for planCacheTTL. The plan stores prefixes checked and canonical.
func planPrefixes(log *slog.Logger, st store.Plans) func(context.Context) (*bgp.Prefixes, error) {
	var (
		mu sync.Mutex
		at time.Time
		ps *bgp.Prefixes
	)
	return func(ctx context.Context) (*bgp.Prefixes, error) {
		mu.Lock()
		defer mu.Unlock()
		// An empty set is not reused: the first prefixes put in the plan
		// count at once, before the peer's initial announcements pass.
		if ps != nil && ps.Len() > 0 && time.Since(at) < planCacheTTL {
			return ps, nil
		}
		p, err := st.Plan(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the plan: %w", err)
		}
		next, err := bgp.ParsePrefixes(p.Prefixes())
		if err != nil {
			return nil, fmt.Errorf("the plan's prefixes: %w", err)
		}
		if next.Len() == 0 && (ps == nil || ps.Len() > 0) {
			log.Warn("no target of the plan lists prefixes: BGP updates are not recorded; add prefixes to the plan's targets")
		}
		ps, at = next, time.Now()
		return ps, nil
	}
}
