// Package agent is catchmap's probe agent: it fetches the aggregator's
// measurement plan, measures each target on its interval, keeps every result
// in an on-disk spool and uploads the spool in batches, losing nothing while
// the aggregator is away.
//
// `catchmap probe` and the static `catchmap-probe` binary both run it through
// Flags, so they share one set of flags.
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/internal/tlsfiles"
	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
	"github.com/catchmap/catchmap/probe/spool"
)

// Measurer measures one spec; *probe.Measurer is the real one.
type Measurer interface {
	Measure(ctx context.Context, sp spec.Spec) ([]result.Record, error)
}

// Option configures an Agent.
type Option func(*Agent)

// WithClock replaces the wall clock (for tests).
func WithClock(c Clock) Option { return func(a *Agent) { a.clock = c } }

// WithMeasurer replaces the measurer built from probe.NewMeasurer.
func WithMeasurer(m Measurer) Option { return func(a *Agent) { a.measurer = m } }

// WithHTTPClient sets the client that talks to the aggregator.
func WithHTTPClient(c *http.Client) Option { return func(a *Agent) { a.client = c } }

// WithResolver sets the resolver that checks host names against the allowlist.
func WithResolver(r *net.Resolver) Option { return func(a *Agent) { a.resolver = r } }

// WithBackoff sets the first and the longest wait between failed uploads
// (1s and 5m by default).
func WithBackoff(initial, maxWait time.Duration) Option {
	return func(a *Agent) { a.backoffInitial, a.backoffMax = initial, maxWait }
}

// maxPlanTargets bounds the plan, and with it the agent's goroutines.
const maxPlanTargets = 10000

// maxPlanBytes bounds the plan body.
const maxPlanBytes = 16 << 20

// authRetry is how long uploads stop after the aggregator refuses the token.
const authRetry = time.Hour

// planCacheFile keeps the last plan in the spool directory so that a probe
// restarted while the aggregator is away still measures.
const planCacheFile = "plan.json"

// Agent runs the plan. Use New, then Run once.
type Agent struct {
	log      *slog.Logger
	cfg      Config
	clock    Clock
	measurer Measurer
	// closeMeasurer releases the sockets of a measurer the agent built itself.
	closeMeasurer func() error
	client        *http.Client
	api           *api.Client // a client of cfg.Aggregator over the client above
	resolver      *net.Resolver
	spool         *spool.Typed[result.Record]
	allow         *Allowlist
	limiter       *rate.Limiter
	sem           chan struct{}
	seed          [32]byte // per-probe: spreads the fleet's start-up splay

	backoffInitial, backoffMax time.Duration

	running      atomic.Bool
	authBlocked  atomic.Int64 // unix nanos until which uploads are off (401)
	lastPlanBody []byte

	m metrics
}

type metrics struct {
	results      *prometheus.CounterVec
	uploaded     prometheus.Counter
	uploadErrors *prometheus.CounterVec
	planErrors   *prometheus.CounterVec
	refused      prometheus.Counter
	targets      prometheus.Gauge
}

// Upload and plan error kinds: a fixed label set.
const (
	kindNetwork      = "network"
	kindServer       = "server"       // 5xx
	kindThrottled    = "throttled"    // 408, 429
	kindRejected     = "rejected"     // 400, 413, 422: the batch itself is wrong
	kindUnauthorized = "unauthorized" // 401, 403
	kindStatus       = "status"       // any other status
)

var errorKinds = []string{kindNetwork, kindServer, kindThrottled, kindRejected, kindUnauthorized, kindStatus}

// New checks cfg (filling defaults), opens the spool and registers the
// agent's metrics with reg.
func New(log *slog.Logger, reg prometheus.Registerer, cfg Config, opts ...Option) (*Agent, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allow, _ := ParseAllowlist(cfg.Allow) // validated above
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		log:            log,
		cfg:            cfg,
		clock:          realClock{},
		client:         tlsfiles.HTTPClient(tc, time.Minute),
		resolver:       net.DefaultResolver,
		allow:          allow,
		limiter:        rate.NewLimiter(rate.Limit(cfg.MaxRate), cfg.Burst),
		sem:            make(chan struct{}, cfg.Concurrency),
		seed:           sha256.Sum256([]byte("catchmap-probe-splay\x00" + cfg.Token.Reveal())),
		backoffInitial: time.Second,
		backoffMax:     5 * time.Minute,
	}
	for _, o := range opts {
		o(a)
	}
	ac, err := api.NewClient(cfg.Aggregator, token.Parse(cfg.Token.Reveal()), a.client)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	ac.UserAgent = "catchmap-probe"
	ac.MaxAnswer = maxPlanBytes
	a.api = ac
	if a.measurer == nil {
		m := probe.NewMeasurer(log, probe.WithProbeName(cfg.Name), probe.WithClock(a.clock.Now))
		a.measurer, a.closeMeasurer = m, m.Close
	}
	a.m = metrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catchmap_probe_results_total",
			Help: "Results measured and spooled, by method and outcome (ok or the error kind).",
		}, []string{"method", "outcome"}),
		uploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catchmap_probe_uploaded_total",
			Help: "Records the aggregator acknowledged.",
		}),
		uploadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catchmap_probe_upload_errors_total",
			Help: "Failed uploads, by kind: network, server, throttled, rejected, unauthorized, status.",
		}, []string{"kind"}),
		planErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catchmap_probe_plan_errors_total",
			Help: "Failed plan fetches, by kind, as for uploads.",
		}, []string{"kind"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catchmap_probe_refused_total",
			Help: "Measurements the allowlist refused.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catchmap_probe_plan_targets",
			Help: "Plan entries being measured.",
		}),
	}
	for _, k := range errorKinds {
		a.m.uploadErrors.WithLabelValues(k)
		a.m.planErrors.WithLabelValues(k)
	}
	for _, c := range []prometheus.Collector{a.m.results, a.m.uploaded, a.m.uploadErrors, a.m.planErrors, a.m.refused, a.m.targets} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("probe agent: register metrics: %w", err)
		}
	}
	sp, err := spool.Open(log, reg, cfg.Spool, spool.Options{MaxBytes: cfg.SpoolMaxBytes, Subsystem: "probe", Now: a.clock.Now})
	if err != nil {
		return nil, err
	}
	a.spool = spool.Results(sp)
	return a, nil
}

// Spool returns the agent's spool.
func (a *Agent) Spool() *spool.Typed[result.Record] { return a.spool }

// Run measures and uploads until ctx ends, then drains: measurements in
// flight finish and are spooled, and one last upload runs, bounded by the
// drain timeout. What it cannot upload stays spooled for the next start.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("probe agent: Run called twice")
	}
	u, _ := url.Parse(a.cfg.Aggregator)
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		a.log.Warn("aggregator URL is plain http: the token travels in clear; use https", "aggregator", a.cfg.Aggregator)
	}
	if a.allow.Empty() {
		a.log.Warn("no allowlist (--allow): every plan entry is measured, whatever the aggregator asks")
	}
	a.log.Info("probe agent starting", "aggregator", a.cfg.Aggregator, "token", a.cfg.Token, "name", a.cfg.Name,
		"ca_file", a.cfg.CAFile, "cert_file", a.cfg.CertFile,
		"spool", a.cfg.Spool, "spooled", a.spool.Len(), "allow", a.allow.String(), "max_rate", a.cfg.MaxRate,
		"concurrency", a.cfg.Concurrency)

	var wg sync.WaitGroup
	wg.Go(func() { a.planLoop(ctx) })
	wg.Go(func() { a.uploadLoop(ctx) })
	wg.Wait()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.DrainTimeout)
	defer cancel()
	a.uploadAll(dctx, nil)
	a.client.CloseIdleConnections()
	if a.closeMeasurer != nil {
		if err := a.closeMeasurer(); err != nil {
			a.log.Warn("closing the measurer's sockets", "err", err)
		}
	}
	if err := a.spool.Close(); err != nil {
		a.log.Warn("closing the spool", "err", err)
	}
	a.log.Info("probe agent stopped", "spooled", a.spool.Len())
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

func (a *Agent) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = a.backoffInitial
	b.MaxInterval = a.backoffMax
	b.Reset()
	return b
}

// planLoop fetches the plan, applies it and refreshes it, and owns the
// per-target runners: it stops them all, and waits for them, when ctx ends.
func (a *Agent) planLoop(ctx context.Context) {
	runners := map[string]*runner{}
	defer func() {
		for _, r := range runners {
			r.cancel()
		}
		for _, r := range runners {
			<-r.done
		}
	}()
	if p, err := a.loadCachedPlan(); err == nil {
		a.log.Info("measuring the cached plan until the aggregator answers", "targets", len(p.Targets), "version", p.Version)
		a.apply(ctx, runners, p)
	} else if !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("cannot read the cached plan: waiting for the aggregator", "err", err)
	}
	bo := a.newBackoff()
	refresh := DefaultPlanRefresh
	for {
		p, err := a.fetchPlan(ctx)
		wait := refresh
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			kind := errorKind(err)
			a.m.planErrors.WithLabelValues(kind).Inc()
			if kind == kindUnauthorized {
				wait = authRetry
				a.log.Error("aggregator refuses this probe's token: measuring the last plan; get a new token (catchmap probe registration) and restart", "err", err)
			} else {
				wait = min(bo.NextBackOff(), refresh)
				a.log.Warn("cannot fetch the plan: keeping the last one", "err", err, "retry_in", wait)
			}
		default:
			bo.Reset()
			if p.Refresh > 0 {
				refresh = max(p.Refresh.D(), time.Second)
				wait = refresh
			}
			a.apply(ctx, runners, p)
		}
		if sleep(ctx, a.clock, wait) != nil {
			return
		}
	}
}

// runner measures one plan entry on its interval.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// targetKey identifies a plan entry by everything that affects how it is
// measured, so an unchanged entry keeps its schedule across refreshes.
func targetKey(t api.Target) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return string(sum[:])
}

// apply starts runners for new plan entries and stops those that left.
func (a *Agent) apply(ctx context.Context, runners map[string]*runner, p *api.Plan) {
	want := map[string]api.Target{}
	for i, t := range p.Targets {
		if i >= maxPlanTargets {
			a.log.Error("plan too long: measuring only the first entries", "entries", len(p.Targets), "max", maxPlanTargets)
			break
		}
		if err := t.Spec.Validate(); err != nil {
			a.log.Warn("plan entry refused: bad spec", "target", t.Target, "name", t.Name, "err", err)
			continue
		}
		if t.Interval <= 0 {
			t.Interval = spec.Duration(DefaultInterval)
		}
		want[targetKey(t)] = t
	}
	for k, r := range runners {
		if _, ok := want[k]; !ok {
			r.cancel()
			<-r.done
			delete(runners, k)
		}
	}
	for k, t := range want {
		if _, ok := runners[k]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &runner{cancel: cancel, done: make(chan struct{})}
		runners[k] = r
		go func() {
			defer close(r.done)
			a.runTarget(rctx, k, t)
		}()
	}
	a.m.targets.Set(float64(len(runners)))
	a.log.Info("plan applied", "version", p.Version, "targets", len(runners))
}

// splay is where in its interval a target first runs: fixed per probe and
// target, so a restart keeps the phase and a fleet does not burst.
func (a *Agent) splay(key string, interval time.Duration) time.Duration {
	h := sha256.New()
	h.Write(a.seed[:])
	h.Write([]byte(key))
	n := binary.BigEndian.Uint64(h.Sum(nil))
	return time.Duration(n % uint64(interval))
}

func (a *Agent) runTarget(ctx context.Context, key string, t api.Target) {
	interval := t.Interval.D()
	// First run at the splay's phase of the wall clock, so a restarted probe
	// keeps its slot and the fleet stays spread out.
	now := a.clock.Now()
	next := now.Truncate(interval).Add(a.splay(key, interval))
	if next.Before(now) {
		next = next.Add(interval)
	}
	// Measure resolves names under ctx too, which the spec's timeout does
	// not cover: bound the whole run so a drain cannot hang on it.
	bound := 3 * max(t.Timeout.D(), spec.DefaultTimeout)
	refused := false
	for {
		if sleep(ctx, a.clock, next.Sub(a.clock.Now())) != nil {
			return
		}
		if err := a.waitTurn(ctx); err != nil {
			return
		}
		// A measurement that started finishes even if ctx ends: its result
		// is spooled by the drain. Its own timeout bounds it.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
		a.measure(mctx, t, &refused)
		cancel()
		<-a.sem
		// Up to 5% jitter keeps probes that share a phase from staying locked.
		jitter := time.Duration(rand.Int64N(int64(interval)/10+1)) - interval/20
		next = next.Add(interval + jitter)
		if now := a.clock.Now(); next.Before(now) {
			next = now // fell behind (a suspended VM): run now, do not catch up
		}
	}
}

// waitTurn waits for the rate limiter, then for a concurrency slot; the
// caller releases the slot.
func (a *Agent) waitTurn(ctx context.Context) error {
	now := a.clock.Now()
	r := a.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		if err := sleep(ctx, a.clock, d); err != nil {
			r.CancelAt(a.clock.Now())
			return err
		}
	}
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// measure runs one plan entry once and spools its records.
func (a *Agent) measure(ctx context.Context, t api.Target, refused *bool) {
	specs, denied, err := a.pin(ctx, t.Spec)
	var recs []result.Record
	if err != nil {
		recs = append(recs, a.errorRecord(t.Spec, "", err.Error(), result.KindNetwork))
	}
	if denied != "" {
		a.m.refused.Inc()
		if !*refused {
			*refused = true
			a.log.Warn("plan entry refused: outside this probe's allowlist (--allow)", "target", t.Target, "name", t.Name, "dials", denied, "allow", a.allow.String())
			recs = append(recs, a.errorRecord(t.Spec, denied, "target outside this probe's allowlist (--allow): refused", result.KindNotAllowed))
		}
	}
	for _, s := range specs {
		rs, err := a.measurer.Measure(ctx, s)
		if err != nil {
			a.log.Warn("plan entry cannot be measured", "target", t.Target, "err", err)
			continue
		}
		recs = append(recs, rs...)
	}
	// Maps and queries select by the entry's name (the target when unnamed);
	// pinning may also have rewritten the spec's target to an address.
	name := t.Name
	if name == "" {
		name = t.Target
	}
	for i := range recs {
		recs[i].Target = name
	}
	a.store(recs)
}

func (a *Agent) errorRecord(s spec.Spec, addr, msg string, kind result.ErrorKind) result.Record {
	r := result.Record{ID: result.NewID(), Time: a.clock.Now().UTC(), Probe: a.cfg.Name, Target: s.Target,
		Method: s.Method, Addr: addr, Error: msg, ErrorKind: kind}
	if ip, err := netip.ParseAddr(addr); err == nil {
		r.AF = 4
		if ip.Is6() {
			r.AF = 6
		}
	}
	return r
}

var knownOutcomes = func() map[result.ErrorKind]bool {
	m := map[result.ErrorKind]bool{}
	for _, k := range result.Kinds {
		m[k] = true
	}
	return m
}()

func (a *Agent) store(recs []result.Record) {
	if len(recs) == 0 {
		return
	}
	for i := range recs {
		outcome := "ok"
		if !recs[i].OK() {
			outcome = "error"
			if knownOutcomes[recs[i].ErrorKind] {
				outcome = string(recs[i].ErrorKind)
			}
		}
		a.m.results.WithLabelValues(recs[i].Method, outcome).Inc()
	}
	// What the spool cannot keep it counts, and logs once a minute at most:
	// a line a Put would flood the log when the disk is full.
	_ = a.spool.Put(recs)
}

// pin applies the allowlist to a spec. It returns the specs to measure
// (the spec itself, or copies pinned to the checked addresses), the first
// refused host or address, and a resolution error.
func (a *Agent) pin(ctx context.Context, s spec.Spec) ([]spec.Spec, string, error) {
	if a.allow.Empty() {
		return []spec.Spec{s}, "", nil
	}
	host, port, err := dialHost(s)
	if err != nil {
		return nil, "", err // Validate passed, so the measurer agrees it is fine
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if a.allow.AllowsAddr(ip) {
			return []spec.Spec{s}, "", nil
		}
		return nil, ip.String(), nil
	}
	if a.allow.AllowsName(host) {
		return []spec.Spec{s}, "", nil
	}
	network := "ip"
	if s.AF == 4 || s.AF == 6 {
		network = "ip" + strconv.Itoa(s.AF)
	}
	rctx, cancel := context.WithTimeout(ctx, spec.DefaultTimeout)
	defer cancel()
	ips, err := a.resolver.LookupNetIP(rctx, network, host)
	if err != nil {
		return nil, "", fmt.Errorf("resolve %s: %w", host, err)
	}
	// One address per family, as the measurer would pick.
	var out []spec.Spec
	denied := ""
	seen := map[bool]bool{}
	for _, ip := range ips {
		ip = ip.Unmap()
		if seen[ip.Is4()] {
			continue
		}
		seen[ip.Is4()] = true
		if !a.allow.AllowsAddr(ip) {
			if denied == "" {
				denied = ip.String()
			}
			continue
		}
		out = append(out, pinned(s, ip, port))
	}
	return out, denied, nil
}

// dialHost is s.DialHost in lower case, as the allowlist compares names.
func dialHost(s spec.Spec) (string, int, error) {
	host, port, err := s.DialHost()
	return strings.ToLower(host), port, err
}

// pinned rewrites s to dial ip: through connect_to for http (so Host and SNI
// keep the name), else through the target itself.
func pinned(s spec.Spec, ip netip.Addr, port int) spec.Spec {
	addr := ip.String()
	if port != 0 {
		addr = net.JoinHostPort(addr, strconv.Itoa(port))
	}
	s.AF = 4
	if ip.Is6() {
		s.AF = 6
	}
	if s.Method == result.MethodHTTP || s.ConnectTo != "" {
		s.ConnectTo = addr
	} else {
		s.Target = addr
	}
	return s
}

// fetchPlan GETs the plan and caches it in the spool directory.
func (a *Agent) fetchPlan(ctx context.Context) (*api.Plan, error) {
	p, body, err := a.api.AgentPlan(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	if string(body) != string(a.lastPlanBody) {
		a.lastPlanBody = body
		if err := a.cachePlan(body); err != nil {
			a.log.Warn("cannot cache the plan: a restart while the aggregator is away will wait for it", "err", err)
		}
	}
	return &p, nil
}

func decodePlan(body []byte) (*api.Plan, error) {
	var p api.Plan
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("plan is not valid JSON: %w", err)
	}
	return &p, nil
}

func (a *Agent) loadCachedPlan() (*api.Plan, error) {
	body, err := os.ReadFile(filepath.Join(a.cfg.Spool, planCacheFile))
	if err != nil {
		return nil, err
	}
	a.lastPlanBody = body
	return decodePlan(body)
}

func (a *Agent) cachePlan(body []byte) error {
	f, err := os.CreateTemp(a.cfg.Spool, ".tmp-plan-*")
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(a.cfg.Spool, planCacheFile))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}
