package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/prometheus/client_golang/prometheus"
)

// GaugeOptions configure the catchment gauges, meant for alerting on a
// site losing or gaining its share, or slowing down:
//
//	catchmap_catchment_site_share{target,site}       share of the probes served
//	catchmap_catchment_site_rtt_p50_ms{target,site}  median of those probes' median RTTs
//
// over the last Window, for every target of the plan. Zero values take
// the defaults.
type GaugeOptions struct {
	Window time.Duration // default 5m
	// Every is how long a computation is reused: a scrape recomputes the
	// gauges when the last computation is older. Default 30s.
	Every time.Duration
	// MaxSites bounds the site label per target: the sites with the
	// smallest shares beyond it are summed as site "other" (share only).
	// Default 64.
	MaxSites int
}

// Gauge defaults and bounds.
const (
	defaultGaugeWindow   = 5 * time.Minute
	defaultGaugeEvery    = 30 * time.Second
	defaultGaugeMaxSites = 64
	gaugeTimeout         = 20 * time.Second
	otherSite            = "other"
)

// catchmentGauges is a prometheus.Collector over the store: series exist
// only for the plan's current targets and their sites, so a target
// removed from the plan loses its series at the next computation.
type catchmentGauges struct {
	log   *slog.Logger
	st    store.Store
	o     GaugeOptions
	now   func() time.Time
	share *prometheus.Desc
	rtt   *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	rows []gaugeRow
}

type gaugeRow struct {
	target, site string
	share        float64
	rtt          *float64
}

func newCatchmentGauges(log *slog.Logger, st store.Store, o GaugeOptions, now func() time.Time) *catchmentGauges {
	if o.Window <= 0 {
		o.Window = defaultGaugeWindow
	}
	if o.Every <= 0 {
		o.Every = defaultGaugeEvery
	}
	if o.MaxSites < 2 {
		o.MaxSites = defaultGaugeMaxSites
	}
	labels := []string{"target", "site"}
	return &catchmentGauges{log: log, st: st, o: o, now: now,
		share: prometheus.NewDesc("catchmap_catchment_site_share",
			fmt.Sprintf("Share (0-1) of the target's served probes that reached the site over the last %s.", o.Window), labels, nil),
		rtt: prometheus.NewDesc("catchmap_catchment_site_rtt_p50_ms",
			fmt.Sprintf("Median of the site's probes' median RTT over the last %s, in milliseconds.", o.Window), labels, nil),
	}
}

func (g *catchmentGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.share
	ch <- g.rtt
}

func (g *catchmentGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); g.at.IsZero() || now.Sub(g.at) >= g.o.Every {
		ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
		rows, err := g.compute(ctx, now)
		cancel()
		if err != nil {
			// No series rather than stale ones: an alert on absent()
			// catches it, a stale share would not.
			g.log.Warn("catchment gauges not computed", "err", err)
		}
		g.rows, g.at = rows, now
	}
	for _, r := range g.rows {
		ch <- prometheus.MustNewConstMetric(g.share, prometheus.GaugeValue, r.share, r.target, r.site)
		if r.rtt != nil {
			ch <- prometheus.MustNewConstMetric(g.rtt, prometheus.GaugeValue, *r.rtt, r.target, r.site)
		}
	}
}

// compute builds each plan target's catchment over the window from the
// store and keeps its site shares and RTTs.
func (g *catchmentGauges) compute(ctx context.Context, now time.Time) ([]gaugeRow, error) {
	p, err := g.st.Plan(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the plan: %w", err)
	}
	from := now.Add(-g.o.Window)
	var rows []gaugeRow
	for _, t := range p.Targets {
		name := cmp.Or(t.Name, t.Target)
		// Country binning: the gauges need only the site table, not cells.
		b, err := maps.NewBuilder(maps.Options{Target: name, From: from, To: now, By: maps.ByCountry}, nil)
		if err != nil {
			return nil, err
		}
		err = g.st.Scan(ctx, store.Query{Target: name, From: from, To: now}, func(r *result.Record) error {
			b.Add(r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading results of %s: %w", name, err)
		}
		rows = append(rows, siteRows(name, b.Build().Sites, g.o.MaxSites)...)
	}
	return rows, nil
}

// siteRows keeps the maxSites-1 largest sites and sums the rest as
// "other", so one target never has more than maxSites series.
func siteRows(target string, sites []maps.SiteStat, maxSites int) []gaugeRow {
	ss := slices.Clone(sites)
	slices.SortFunc(ss, func(a, b maps.SiteStat) int {
		return cmp.Or(cmp.Compare(b.Share, a.Share), strings.Compare(a.Site, b.Site))
	})
	var rows []gaugeRow
	for i, s := range ss {
		if len(ss) > maxSites && i >= maxSites-1 {
			if i == maxSites-1 {
				rows = append(rows, gaugeRow{target: target, site: otherSite})
			}
			rows[len(rows)-1].share += s.Share
			continue
		}
		rows = append(rows, gaugeRow{target: target, site: s.Site, share: s.Share, rtt: s.RTTP50})
	}
	return rows
}
