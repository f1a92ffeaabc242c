package app

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/aggregator/config"
	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/bgp"
	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

// eventRoutes are the BGP routes the app adds to the server's own: the
// admin upload of events (catchmap bgp import --aggregator).
func eventRoutes(log *slog.Logger, st store.Store, now func() time.Time) []server.Route {
	return []server.Route{
		{Pattern: "POST " + api.Prefix + "/events", Access: server.Admin, Handler: bgp.PostEventsHandler(log, st, now)},
	}
}

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
		var all []string
		for _, t := range p.Targets {
			all = append(all, t.Prefixes...)
		}
		next, err := bgp.ParsePrefixes(all)
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

// targetByName finds a plan entry as the API does: by name, else by target.
func targetByName(p api.Plan, name string) *api.Target {
	var t *api.Target
	for i := range p.Targets {
		if p.Targets[i].Name == name || (t == nil && p.Targets[i].Target == name) {
			t = &p.Targets[i]
		}
	}
	return t
}

// causeLookback is how long before a shift a BGP event or annotation may
// be to count as its cause.
const causeLookback = time.Hour

// Cause is what most likely moved a catchment shift: the latest BGP event
// of the target's prefixes or annotation before the end of the shift's step.
type Cause struct {
	Kind string    `json:"kind"` // bgp or annotation
	Time time.Time `json:"time"`
	Text string    `json:"text"`
	ID   string    `json:"id,omitempty"`
}

// withCauses wraps the timeline handler: every shift of its answer gets a
// "cause" field when a BGP event or annotation precedes it by at most
// causeLookback. Other fields pass through untouched, and any answer it
// cannot read (errors, other formats) goes out as it came.
func withCauses(log *slog.Logger, st store.Store, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &bufferedWriter{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(bw, r)
		body := bw.buf.Bytes()
		if bw.code == http.StatusOK && strings.HasPrefix(bw.header.Get("Content-Type"), "application/json") {
			if b, err := addCauses(r.Context(), st, body); err != nil {
				log.Warn("timeline: shifts not linked to causes", "err", err)
			} else {
				body = b
			}
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(bw.code)
		_, _ = w.Write(body)
	})
}

type bufferedWriter struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

// addCauses returns the timeline JSON with causes added to its shifts.
func addCauses(ctx context.Context, st store.Store, body []byte) ([]byte, error) {
	var tl map[string]json.RawMessage
	if err := json.Unmarshal(body, &tl); err != nil {
		return nil, fmt.Errorf("reading the timeline: %w", err)
	}
	var shifts []map[string]json.RawMessage
	if err := json.Unmarshal(tl["shifts"], &shifts); err != nil || len(shifts) == 0 {
		return body, nil
	}
	var head struct {
		Target string    `json:"target"`
		From   time.Time `json:"from"`
		To     time.Time `json:"to"`
		Step   float64   `json:"step"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, fmt.Errorf("reading the timeline: %w", err)
	}
	step := time.Duration(head.Step * float64(time.Second))
	causes, err := causesOf(ctx, st, head.Target, head.From.Add(-causeLookback), head.To.Add(step))
	if err != nil {
		return nil, err
	}
	for _, sh := range shifts {
		var at time.Time
		if err := json.Unmarshal(sh["time"], &at); err != nil {
			return nil, fmt.Errorf("reading a shift's time: %w", err)
		}
		// The move happened in the shift's step at the latest.
		end := at.Add(step)
		i, _ := slices.BinarySearchFunc(causes, end, func(c Cause, t time.Time) int { return c.Time.Compare(t) })
		if i == 0 || causes[i-1].Time.Before(at.Add(-causeLookback)) {
			continue
		}
		b, err := json.Marshal(causes[i-1])
		if err != nil {
			return nil, err
		}
		sh["cause"] = b
	}
	b, err := json.Marshal(shifts)
	if err != nil {
		return nil, err
	}
	tl["shifts"] = b
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	if err := enc.Encode(tl); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// causesOf lists the target's annotations and the BGP events of its plan
// prefixes in [from, to), in time order; at equal times an annotation
// (an operator's own words) comes last, so it wins.
func causesOf(ctx context.Context, st store.Store, target string, from, to time.Time) ([]Cause, error) {
	var cs []Cause
	p, err := st.Plan(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the plan: %w", err)
	}
	if t := targetByName(p, target); t != nil && len(t.Prefixes) > 0 {
		es, err := st.Events(ctx, t.Prefixes, from, to)
		if err != nil {
			return nil, fmt.Errorf("reading BGP events: %w", err)
		}
		for _, e := range es {
			cs = append(cs, Cause{Kind: "bgp", Time: e.Time, Text: eventText(e), ID: e.ID})
		}
	}
	as, err := st.Annotations(ctx, target, from, to)
	if err != nil {
		return nil, fmt.Errorf("reading annotations: %w", err)
	}
	for _, a := range as {
		cs = append(cs, Cause{Kind: "annotation", Time: a.Time, Text: a.Text, ID: a.ID})
	}
	rank := map[string]int{"bgp": 0, "annotation": 1}
	slices.SortStableFunc(cs, func(a, b Cause) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(rank[a.Kind], rank[b.Kind]))
	})
	return cs, nil
}

// eventText is an event in a line: "withdraw 192.0.2.0/24 from 192.0.2.1".
func eventText(e api.Event) string {
	var b strings.Builder
	b.WriteString(e.Kind + " " + e.Prefix)
	if len(e.ASPath) > 0 {
		b.WriteString(" AS path")
		for _, as := range e.ASPath {
			b.WriteString(" " + strconv.FormatUint(uint64(as), 10))
		}
	}
	if e.Peer != "" {
		b.WriteString(" from " + e.Peer)
	}
	if e.Source != "" {
		b.WriteString(" (" + e.Source + ")")
	}
	return b.String()
}

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
