package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/maps"
)

// chromium is Debian's package; the test command installs it
// (apt-get install -y chromium), never the test itself.
const chromium = "/usr/bin/chromium"

// palette pins colours.js's PALETTE: a site's colour must not change between
// releases, or people's reading of the map (and old screenshots) breaks.
var palette = []string{
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
	"#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
	"#9edae5", "#dbdb8d", "#393b79", "#637939",
}

var latencyScale = []string{"#2c7fb8", "#41b6c4", "#e0b400", "#f08c00", "#d7301f", "#7f0000", "#9e9e9e"}

// siteColours mirrors colours.js's assignColours: FNV-1a of the code picks a
// palette slot, and a code that collides with an earlier one (in sort
// order) takes the next free slot.
func siteColours(codes []string) func(string) string {
	codes = slices.Clone(codes)
	slices.Sort(codes)
	used := map[int]bool{}
	byCode := map[string]string{"": "#9e9e9e"}
	for _, c := range slices.Compact(codes) {
		h := fnv.New32a()
		h.Write([]byte(c))
		i := int(h.Sum32() % uint32(len(palette)))
		for k := 0; k < len(palette) && used[i]; k++ {
			i = (i + 1) % len(palette)
		}
		used[i] = true
		byCode[c] = palette[i]
	}
	return func(site string) string { return byCode[site] }
}

// newBrowser starts a headless Chromium for the whole test and returns its
// context. Chromium is kept off the network: besides the flags that stop its
// background services, every host name but loopback fails to resolve.
func newBrowser(t testing.TB) context.Context {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s, and CI must have it: apt-get install -y chromium", chromium)
		}
		t.Skipf("browser tests need %s: apt-get install -y chromium", chromium)
	}
	profile := userDataDir(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // runs as root in CI containers
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1100),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(browserErrorf))
	t.Cleanup(func() {
		// Closed gracefully and waited for, so that no Chromium process
		// writes to the profile while it is removed; cut short after 10 s.
		watchdog := time.AfterFunc(10*time.Second, cancelB)
		defer watchdog.Stop()
		if err := chromedp.Cancel(bctx); err != nil {
			t.Logf("closing %s: %v", chromium, err)
		}
		cancelB()
	})
	// The first Run starts the browser, which lives as long as the context
	// of that Run: bound the start with a watchdog rather than a timeout.
	watchdog := time.AfterFunc(30*time.Second, cancelB)
	err := chromedp.Run(bctx)
	if !watchdog.Stop() || err != nil {
		t.Fatalf("starting %s (30 s allowed): %v", chromium, err)
	}
	return bctx
}

// userDataDir is a temporary profile directory for Chromium. It is not
// t.TempDir: a Chromium helper process can still write to the profile for
// a moment after the browser has exited, which made TempDir's removal fail
// the test. Removal is retried until the directory stays gone, for up to
// 5 s.
func userDataDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "catchmap-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		gone := 0 // removals in a row that found nothing left to remove
		_, err := testutil.Poll(5*time.Second, func() error {
			if err := os.RemoveAll(dir); err != nil {
				gone = 0
				return err
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				gone = 0
				return errors.New("written again after removal")
			}
			if gone++; gone < 3 {
				return errors.New("not yet gone for long")
			}
			return nil
		})
		if err != nil {
			t.Logf("could not remove Chromium's profile %s: %v", dir, err)
		}
	})
	return dir
}

// browserErrorf drops the errors chromedp v0.13.6 logs for network events it
// cannot decode (Chromium 156 added values such as IPAddressSpace
// "Loopback"); the tests read page state with Evaluate instead.
func browserErrorf(format string, args ...any) {
	if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "could not unmarshal event") {
		log.Print("chromedp: ", msg)
	}
}

// tab is one page in the browser, with what Chromium itself reported:
// exceptions, console errors and log entries (a failed load, a CSP refusal).
type tab struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newTab(t testing.TB, browser context.Context, timeout time.Duration) *tab {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelT)
	tb := &tab{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.APITypeError && ev.Type != runtime.APITypeAssert {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level != cdplog.LevelError {
				return
			}
			msg = "log: " + ev.Entry.Text + " " + ev.Entry.URL
		default:
			return
		}
		tb.mu.Lock()
		tb.errs = append(tb.errs, msg)
		tb.mu.Unlock()
	})
	return tb
}

func (tb *tab) run(t testing.TB, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(tb.ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into res.
func (tb *tab) eval(t testing.TB, expr string, res any) {
	t.Helper()
	tb.run(t, chromedp.Evaluate(expr, res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// wait polls a JavaScript condition until it holds or the timeout passes.
func (tb *tab) wait(t testing.TB, what, cond string, timeout time.Duration) {
	t.Helper()
	testutil.WaitForNil(t, timeout, what+" ("+cond+")", func() error {
		var ok bool
		tb.eval(t, "!!("+cond+")", &ok)
		if ok {
			return nil
		}
		var errs []string
		tb.eval(t, "window.catchmapErrors || []", &errs)
		return fmt.Errorf("page errors: %q; browser errors: %q", errs, tb.browserErrors())
	})
}

func (tb *tab) browserErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.errs)
}

// pageState is what the checks read from the page in one go.
type pageState struct {
	Cells []struct {
		Cell, Site, Fill, FillOpacity, Stroke string
		Changed                               bool
	}
	Legend []struct {
		Site  string
		Share float64
		Text  string
		Name  string // the full name, in the name cell's title
	}
	LegendFits        bool
	Shifts, Notes     []string
	CSV, GeoJSON      string
	ProbeRows         int
	Probes            []struct{ Probe, Name, LastSeen string }
	Suspects          []string
	Search, Href      string
	Status            string
	SiteMarkers       []string
	Flows             int
	Moved             string
	Targets           []string
	Scale             bool
	Errors            []string
	Origin            string
	Resources         []string
	Attribution       string
	CellsAdded, Drawn float64
}

const readState = `(() => {
  const all = (s) => [...document.querySelectorAll(s)];
  const mark = (n) => (performance.getEntriesByName(n)[0] || {}).startTime || 0;
  return {
    cells: all('path.cell').map(p => ({cell: p.dataset.cell, site: p.dataset.site, fill: p.getAttribute('fill'),
      fillOpacity: p.getAttribute('fill-opacity'), stroke: p.getAttribute('stroke'), changed: p.classList.contains('changed')})),
    legend: all('#legend tbody tr').map(r => ({site: r.dataset.site, share: +r.dataset.share, text: r.innerText,
      name: r.querySelector('td.name').title})),
    legendFits: (a => a.scrollWidth <= a.clientWidth)(document.querySelector('aside')),
    shifts: all('#timeline .tl-mark.shift').map(m => m.dataset.time),
    notes: all('#timeline .tl-mark.annotation').map(m => m.title),
    csv: document.querySelector('#dl-csv').href,
    geojson: document.querySelector('#dl-geojson').href,
    probeRows: all('#probes tbody tr').length,
    probes: all('#probes tbody tr').map(r => ({probe: r.dataset.probe, name: r.querySelector('td.name').textContent,
      lastSeen: r.querySelector('time') ? r.querySelector('time').getAttribute('datetime') : ''})),
    suspects: all('#probes tbody tr[data-suspect]').map(r => r.dataset.probe),
    search: location.search,
    href: location.href,
    status: document.querySelector('#status').textContent,
    siteMarkers: all('path.site-marker').map(p => p.dataset.site),
    flows: all('#flows tbody tr').length,
    moved: document.querySelector('#moved').textContent,
    targets: all('#target option').map(o => o.value),
    scale: !!document.querySelector('#scale'),
    errors: window.catchmapErrors,
    origin: location.origin,
    resources: performance.getEntriesByType('resource').map(e => e.name)
      .concat(performance.getEntriesByType('navigation').map(e => e.name)),
    attribution: document.querySelector('.leaflet-control-attribution').innerText,
    cellsAdded: mark('catchmap:cells-added'),
    drawn: mark('catchmap:cells-drawn'),
  };
})()`

func (tb *tab) state(t testing.TB) pageState {
	t.Helper()
	var s pageState
	tb.eval(t, readState, &s)
	return s
}

// checkClean fails on any error the page or Chromium saw and on any request
// that left the test server's origin.
func (tb *tab) checkClean(t *testing.T, s pageState, origin string) {
	t.Helper()
	if len(s.Errors) > 0 {
		t.Errorf("page errors: %q", s.Errors)
	}
	if errs := tb.browserErrors(); len(errs) > 0 {
		t.Errorf("browser errors: %q", errs)
	}
	if s.Origin != origin {
		t.Errorf("page origin %q, want %q", s.Origin, origin)
	}
	for _, r := range s.Resources {
		if !strings.HasPrefix(r, origin+"/") {
			t.Errorf("request outside the origin: %s", r)
		}
	}
}

func screenshot(t *testing.T, tb *tab, name string) {
	dir := os.Getenv("CATCHMAP_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	var png []byte
	tb.run(t, chromedp.FullScreenshot(&png, 100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// decode reads an API answer.
func decode[T any](tb testing.TB, what string, b []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decoding %s: %v", what, err)
	}
	return v
}

func abs(x int) int { return max(x, -x) }

func pageURL(base string, q url.Values) string { return base + "/?" + q.Encode() }

func fixedWindow(mode string, w [2]time.Time) url.Values {
	return url.Values{"target": {"k-root"}, "res": {"3"}, "mode": {mode},
		"from": {w[0].Format(time.RFC3339)}, "to": {w[1].Format(time.RFC3339)}}
}

// isoMs is how the page writes times into API requests (toISOString).
const isoMs = "2006-01-02T15:04:05.000Z"

// download clicks a download link and returns the file Chromium saved and
// the name it was offered under.
func (tb *tab) download(t testing.TB, selector string) (name string, body []byte) {
	t.Helper()
	dir := t.TempDir()
	type done struct{ guid, name string }
	var mu sync.Mutex
	names := map[string]string{}
	finished := make(chan done, 4)
	chromedp.ListenTarget(tb.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *browser.EventDownloadWillBegin:
			mu.Lock()
			names[ev.GUID] = ev.SuggestedFilename
			mu.Unlock()
		case *browser.EventDownloadProgress:
			if ev.State == browser.DownloadProgressStateCompleted || ev.State == browser.DownloadProgressStateCanceled {
				mu.Lock()
				d := done{ev.GUID, names[ev.GUID]}
				mu.Unlock()
				if ev.State == browser.DownloadProgressStateCanceled {
					d.guid = ""
				}
				select {
				case finished <- d:
				default:
				}
			}
		}
	})
	tb.run(t, browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).
		WithDownloadPath(dir).WithEventsEnabled(true),
		chromedp.Click(selector, chromedp.ByQuery))
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case d := <-finished:
			if d.guid == "" {
				t.Fatalf("the download from %s was cancelled; page status %q", selector, tb.state(t).Status)
			}
			b, err := os.ReadFile(filepath.Join(dir, d.guid)) // AllowAndName saves under the GUID
			if err != nil {
				t.Fatal(err)
			}
			return d.name, b
		case <-time.After(200 * time.Millisecond):
		}
		if st := tb.state(t).Status; strings.Contains(st, "Could not download") {
			t.Fatalf("the download from %s failed: %s", selector, st)
		}
	}
	t.Fatalf("no download from %s within 15 s", selector)
	return "", nil
}

// checkCells compares the cells drawn with a catchment from the API: the
// same cells, each with its site's colour (or on the latency scale), and
// faint when of low confidence.
func checkCells(t *testing.T, s pageState, c maps.Catchment, latency bool) {
	t.Helper()
	if len(s.Cells) != len(c.Cells) || len(c.Cells) == 0 {
		t.Errorf("drew %d cell paths, the API has %d", len(s.Cells), len(c.Cells))
	}
	var codes []string
	for _, st := range c.Sites {
		codes = append(codes, st.Site)
	}
	siteColour := siteColours(codes)
	want := map[string]maps.CellStat{}
	for _, cs := range c.Cells {
		want[cs.Cell] = cs
	}
	for _, cell := range s.Cells {
		w, ok := want[cell.Cell]
		switch {
		case !ok:
			t.Errorf("cell %s is drawn but not in the API's catchment", cell.Cell)
		case cell.Site != w.Site:
			t.Errorf("cell %s: site %q, the API says %q", cell.Cell, cell.Site, w.Site)
		case latency && !slices.Contains(latencyScale, cell.Fill):
			t.Errorf("cell %s fill %s is not on the latency scale", cell.Cell, cell.Fill)
		case !latency && cell.Fill != siteColour(w.Site):
			t.Errorf("cell %s (%s): fill %s, want %s", cell.Cell, w.Site, cell.Fill, siteColour(w.Site))
		case (w.Confidence == maps.ConfidenceLow) != (cell.FillOpacity == "0.25"):
			t.Errorf("cell %s: confidence %s but fill-opacity %s", cell.Cell, w.Confidence, cell.FillOpacity)
		case !cell.Changed && cell.Stroke != cell.Fill:
			// Outlined in its own colour, a small cell stays visible at world zoom.
			t.Errorf("cell %s: stroke %s, want its fill %s", cell.Cell, cell.Stroke, cell.Fill)
		}
		delete(want, cell.Cell)
	}
	for cell := range want {
		t.Errorf("cell %s of the API's catchment is not drawn", cell)
	}
}

// featureCollection is what the checks read of the API's GeoJSON.
type featureCollection struct {
	Features []struct{ Properties struct{ Kind string } }
}

// checkCSV compares a downloaded catchment CSV with the cells on screen.
func checkCSV(t *testing.T, body []byte, s pageState) {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("CSV download: %v %q", err, body)
	}
	if len(rows)-1 != len(s.Cells) {
		t.Errorf("CSV has %d rows, the map %d cells", len(rows)-1, len(s.Cells))
	}
	onScreen := map[string]string{}
	for _, c := range s.Cells {
		onScreen[c.Cell] = c.Site
	}
	for _, r := range rows[1:] {
		if site, ok := onScreen[r[0]]; !ok || site != r[1] {
			t.Errorf("CSV row %v is not on screen (site there %q)", r[:2], site)
		}
	}
}

// checkAnswered fails on any API request of the page that was not answered
// 200 (one still being served, a poll, passes), and on any that did not
// carry the aggregator's read token.
func checkAnswered(t *testing.T, agg *aggregator, reqs []apiRequest) {
	t.Helper()
	for _, r := range reqs {
		if r.Status != 200 && r.Status != 0 {
			t.Errorf("the API answered %d to the page's %s", r.Status, r.URI)
		}
		if agg.token != "" && r.Auth != "Bearer "+agg.token {
			t.Errorf("the page's %s went without the read token (Authorization %q)", r.URI, strings.Repeat("*", len(r.Auth)))
		}
	}
}

// checkProbeNames compares the probe table's names and last-seen times
// with the aggregator's probe registry: a registered probe shows its name
// and when it was last seen, an unregistered one its id.
func checkProbeNames(t *testing.T, agg *aggregator, s pageState) {
	t.Helper()
	reg := decode[[]api.Probe](t, "the probe registry", agg.get(t, api.Prefix+"/probes"))
	byID := map[string]api.Probe{}
	for _, p := range reg {
		byID[p.ID] = p
	}
	named := 0
	for _, row := range s.Probes {
		p, ok := byID[row.Probe]
		if !ok {
			if row.Name != row.Probe || row.LastSeen != "" {
				t.Errorf("unregistered probe %s: name %q, last seen %q; want its id and none", row.Probe, row.Name, row.LastSeen)
			}
			continue
		}
		named++
		seen, err := time.Parse(time.RFC3339Nano, row.LastSeen)
		switch {
		case row.Name != p.Name:
			t.Errorf("probe %s: name %q, the registry says %q", row.Probe, row.Name, p.Name)
		case p.LastSeen == nil || err != nil || !seen.Equal(*p.LastSeen):
			t.Errorf("probe %s: last seen %q, the registry says %v", row.Probe, row.LastSeen, p.LastSeen)
		}
	}
	if named == 0 || !slices.ContainsFunc(s.Probes, func(r struct{ Probe, Name, LastSeen string }) bool { return r.Probe == unregistered }) {
		t.Errorf("probe table %v: want registered probes by name and %s by its id", s.Probes, unregistered)
	}
}

// rendered is the condition of a page that drew its map, timeline and
// probe table.
const rendered = `document.body.dataset.renders >= 1 &&
	document.querySelectorAll('#timeline .tl-mark').length > 0 &&
	document.querySelectorAll('#probes tbody tr').length > 0 &&
	performance.getEntriesByName('catchmap:cells-drawn').length > 0`

// TestBrowser drives the page in headless Chromium against the real
// aggregator over a seeded SQLite store, and checks what it draws against
// what the aggregator's API answers for the same parameters.
func TestBrowser(t *testing.T) {
	chrome := newBrowser(t)
	w := newWorld()
	st := seedStore(t, w, w.wideRecords(t, "wide", 2500)...) // past map.js's SVG_MAX: drawn on one canvas
	agg := serve(t, w, st, "")

	t.Run("catchment", func(t *testing.T) {
		since := len(agg.requests())
		tb := newTab(t, chrome, 60*time.Second)
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, fixedWindow("catchment", w.winB))))
		tb.wait(t, "the map, timeline and probe table", rendered, 20*time.Second)
		s := tb.state(t)

		cq, c := agg.shown(t)
		if !strings.Contains(cq, "from="+url.QueryEscape(w.winB[0].Format(isoMs))) || !strings.Contains(cq, "to="+url.QueryEscape(w.winB[1].Format(isoMs))) {
			t.Errorf("the page asked %s, not for the window in its URL", cq)
		}
		checkCells(t, s, c, false)
		for _, cell := range s.Cells {
			if cell.Changed {
				t.Errorf("cell %s outlined as changed outside diff mode", cell.Cell)
			}
		}

		if !s.LegendFits {
			t.Error("the sidebar scrolls sideways: the legend is wider than it")
		}
		if len(s.Legend) != len(c.Sites) {
			t.Errorf("legend lists %d sites, the API %d", len(s.Legend), len(c.Sites))
		}
		for i, l := range s.Legend {
			if i >= len(c.Sites) {
				break
			}
			ws := c.Sites[i]
			wantPct := fmt.Sprintf("%.1f%%", ws.Share*100)
			if l.Site != ws.Site || l.Share != ws.Share || !strings.Contains(l.Text, ws.Site) || !strings.Contains(l.Text, wantPct) || l.Name != ws.Name {
				t.Errorf("legend row %d: %+v, want site %s share %s name %q", i, l, ws.Site, wantPct, ws.Name)
			}
		}
		var located []string
		for _, ws := range c.Sites {
			if ws.Lat != nil && ws.Lon != nil {
				located = append(located, ws.Site)
			}
		}
		if !slices.Equal(s.SiteMarkers, located) {
			t.Errorf("site markers %v, want %v", s.SiteMarkers, located)
		}

		tq := agg.last(t, "/api/v1/timeline")
		tl := decode[maps.Timeline](t, tq, agg.get(t, tq))
		var shifts []string
		for _, sh := range tl.Shifts {
			shifts = append(shifts, sh.Time.Format(isoMs))
			if d := sh.Time.Sub(w.winB[0]); d < -time.Minute || d > time.Minute {
				t.Errorf("the API's timeline shifts at %s, away from the seeded shift at %s", sh.Time, w.winB[0])
			}
		}
		if !slices.Equal(s.Shifts, shifts) || len(shifts) != 1 {
			t.Errorf("timeline marks shifts at %v, the API's timeline %v", s.Shifts, shifts)
		}
		// The x axis starts shortly before the data (or the window, if
		// sooner), not at the start of the empty range the page asked for.
		var x struct{ Min, Max float64 }
		tb.eval(t, `({min: catchmap.plot.scales.x.min, max: catchmap.plot.scales.x.max})`, &x)
		lo := w.winB[0]
		for _, st := range tl.Steps {
			if st.Probes > 0 {
				if st.Time.Before(lo) {
					lo = st.Time
				}
				break
			}
		}
		if l := float64(lo.Unix()); x.Min > l || x.Min < max(float64(tl.From.Unix()), l-0.06*(x.Max-l)) {
			t.Errorf("timeline x axis from %s, want just before %s (data or window start)", time.Unix(int64(x.Min), 0).UTC(), lo)
		}
		if len(s.Notes) != 1 || s.Notes[0] != "drained fra for maintenance" {
			t.Errorf("timeline annotations %q, want the seeded one", s.Notes)
		}

		gq := agg.last(t, "/api/v1/catchment", "format=geojson")
		gj := decode[featureCollection](t, gq, agg.get(t, gq))
		probes := 0
		for _, f := range gj.Features {
			if f.Properties.Kind == maps.KindProbe {
				probes++
			}
		}
		if s.ProbeRows != probes || probes == 0 {
			t.Errorf("probe table has %d rows, the GeoJSON %d probes", s.ProbeRows, probes)
		}
		checkProbeNames(t, agg, s)
		var suspects []string
		for _, ls := range c.LocationSuspects {
			suspects = append(suspects, ls.Probe)
		}
		slices.Sort(suspects)
		slices.Sort(s.Suspects)
		if !slices.Equal(s.Suspects, suspects) || !slices.Contains(suspects, "p-liar") {
			t.Errorf("probes flagged by the location check %v, the API's %v", s.Suspects, suspects)
		}

		q, _ := url.ParseQuery(strings.TrimPrefix(s.Search, "?"))
		for k, v := range map[string]string{"target": "k-root", "res": "3", "mode": "catchment",
			"from": w.winB[0].Format(time.RFC3339), "to": w.winB[1].Format(time.RFC3339)} {
			if q.Get(k) != v {
				t.Errorf("URL state %s=%q, want %q (%s)", k, q.Get(k), v, s.Search)
			}
		}
		if !slices.Equal(s.Targets, []string{"k-root", "cloudflare-dns"}) {
			t.Errorf("target picker offers %q, want the plan's", s.Targets)
		}
		if !strings.Contains(s.Attribution, "Natural Earth") {
			t.Errorf("attribution %q does not credit Natural Earth", s.Attribution)
		}

		// The CSV link names exactly what is on screen, and the button
		// downloads those cells.
		u, err := url.Parse(s.CSV)
		if err != nil {
			t.Fatal(err)
		}
		lq := u.Query()
		if u.Path != "/api/v1/catchment" || lq.Get("format") != "csv" || lq.Get("target") != "k-root" || lq.Get("res") != "3" ||
			lq.Get("by") != "h3" || lq.Get("from") != w.winB[0].Format(isoMs) || lq.Get("to") != w.winB[1].Format(isoMs) {
			t.Errorf("CSV link %s does not name the window on screen", s.CSV)
		}
		if g, _ := url.Parse(s.GeoJSON); g == nil || g.Query().Get("format") != "geojson" || g.Query().Get("from") != lq.Get("from") {
			t.Errorf("GeoJSON link %s does not match the CSV link %s", s.GeoJSON, s.CSV)
		}
		name, body := tb.download(t, "#dl-csv")
		if !strings.HasPrefix(name, "catchmap-k-root-") || !strings.HasSuffix(name, ".csv") {
			t.Errorf("CSV saved as %q", name)
		}
		checkCSV(t, body, s)

		if s.CellsAdded <= 0 || s.Drawn < s.CellsAdded {
			t.Errorf("performance marks: cells added at %v ms, drawn at %v ms", s.CellsAdded, s.Drawn)
		}
		// The GeoJSON carries the rest of the catchment: the aggregator
		// computes the window once.
		for _, r := range agg.requests()[since:] {
			if strings.HasPrefix(r.URI, api.Prefix+"/catchment?") && strings.Contains(r.URI, "format=json") {
				t.Errorf("the page asked for the catchment besides its GeoJSON: %s", r.URI)
			}
		}
		screenshot(t, tb, "catchment")
		tb.checkClean(t, tb.state(t), agg.URL)
		checkAnswered(t, agg, agg.requests()[since:])
	})

	t.Run("diff", func(t *testing.T) {
		since := len(agg.requests())
		tb := newTab(t, chrome, 60*time.Second)
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, fixedWindow("diff", w.winB))))
		tb.wait(t, "the diff", `document.body.dataset.renders >= 1 && document.querySelectorAll('#flows tbody tr').length > 0 &&
			document.querySelectorAll('#timeline .tl-window').length == 2`, 20*time.Second)
		s := tb.state(t)
		// With no "before" chosen, the diff compares with the window just before.
		dq := agg.last(t, "/api/v1/diff", url.Values{
			"a_from": {w.winA[0].Format(isoMs)}, "a_to": {w.winA[1].Format(isoMs)},
			"b_from": {w.winB[0].Format(isoMs)}, "b_to": {w.winB[1].Format(isoMs)}}.Encode())
		d := decode[maps.Diff](t, dq, agg.get(t, dq))
		var changed, wantChanged []string
		for _, c := range s.Cells {
			if c.Changed {
				changed = append(changed, c.Cell)
				if c.Stroke != "#111" {
					t.Errorf("changed cell %s stroke %s, want the outline colour", c.Cell, c.Stroke)
				}
			}
		}
		for _, c := range d.CellsChanged {
			wantChanged = append(wantChanged, c.Cell)
		}
		slices.Sort(changed)
		slices.Sort(wantChanged)
		if !slices.Equal(changed, wantChanged) || len(changed) != 2 {
			t.Errorf("outlined cells %v, want exactly the API's %v (Berlin's and Paris's)", changed, wantChanged)
		}
		_, c := agg.shown(t)
		checkCells(t, s, c, false)
		if s.Flows != len(d.Flows) {
			t.Errorf("flow table has %d rows, the API %d", s.Flows, len(d.Flows))
		}
		if want := fmt.Sprintf("%d of %d probes moved (%.1f%%", d.MovedProbes, d.Probes, d.MovedShare*100); !strings.Contains(s.Moved, want) {
			t.Errorf("moved: %q, want it to say %q", s.Moved, want)
		}
		screenshot(t, tb, "diff")
		tb.checkClean(t, tb.state(t), agg.URL)
		checkAnswered(t, agg, agg.requests()[since:])
	})

	t.Run("latency", func(t *testing.T) {
		tb := newTab(t, chrome, 60*time.Second)
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, fixedWindow("latency", w.winB))))
		tb.wait(t, "the latency map", `document.body.dataset.renders >= 1 && document.querySelector('#scale')`, 20*time.Second)
		s := tb.state(t)
		_, c := agg.shown(t)
		checkCells(t, s, c, true)
		tb.run(t, chromedp.Evaluate(`document.querySelector('path.cell[data-site="iad"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))`, nil))
		screenshot(t, tb, "latency")
		tb.checkClean(t, s, agg.URL)
	})

	t.Run("live", func(t *testing.T) {
		// The aggregator's default window (its injected clock's last 15
		// minutes) and the page's live window hold the same results: see
		// world.
		def := decode[maps.Catchment](t, "the default catchment", agg.get(t, "/api/v1/catchment?target=k-root&res=3&by=h3"))
		if !def.From.Equal(w.now.Add(-15*time.Minute)) || !def.To.Equal(w.now) {
			t.Errorf("the aggregator's default window %s..%s, want the 15 minutes before its clock's %s", def.From, def.To, w.now)
		}
		tb := newTab(t, chrome, 60*time.Second)
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, url.Values{"target": {"k-root"}})))
		tb.wait(t, "the live map", rendered, 20*time.Second)
		s := tb.state(t)
		checkCells(t, s, def, false)
		_, page := agg.shown(t)
		if d := page.To.Sub(page.From); d != 15*time.Minute {
			t.Errorf("the live window %s..%s is %v long, want 15 minutes", page.From, page.To, d)
		}
		if d := time.Since(page.To); d < 0 || d > 30*time.Second {
			t.Errorf("the live window ends at %s, %v ago", page.To, d)
		}
		tb.checkClean(t, s, agg.URL)
	})

	t.Run("many cells", func(t *testing.T) {
		tb := newTab(t, chrome, 60*time.Second)
		q := fixedWindow("catchment", w.winB)
		q.Set("target", "wide")
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, q)))
		tb.wait(t, "the canvas", `document.querySelector('canvas.cell-canvas') && performance.getEntriesByName('catchmap:cells-drawn').length`, 30*time.Second)
		_, c := agg.shown(t, "target=wide")
		var n string
		tb.eval(t, `document.querySelector('canvas.cell-canvas').dataset.cells`, &n)
		if n != fmt.Sprint(len(c.Cells)) || len(c.Cells) != 2500 {
			t.Errorf("canvas holds %s cells, the API %d (2500 seeded)", n, len(c.Cells))
		}
		screenshot(t, tb, "many-cells")
		var codes []string
		for _, st := range c.Sites {
			codes = append(codes, st.Site)
		}
		siteColour := siteColours(codes)
		// Zoom on three cells; at each centre the canvas shows the cell's
		// site colour and hovering there names the cell.
		for _, cs := range []maps.CellStat{c.Cells[0], c.Cells[len(c.Cells)/2], c.Cells[len(c.Cells)-1]} {
			var pt struct {
				X, Y       float64
				R, G, B, A int
			}
			tb.eval(t, fmt.Sprintf(`new Promise((ok) => {
				const m = catchmap.map;
				m.setView([%v, %v], 7, {animate: false});
				requestAnimationFrame(() => {
					const p = m.latLngToContainerPoint([%[1]v, %[2]v]), r = m.getContainer().getBoundingClientRect();
					const cv = document.querySelector('canvas.cell-canvas'), dpr = window.devicePixelRatio || 1;
					const [R, G, B, A] = cv.getContext('2d').getImageData(Math.round(p.x * dpr), Math.round(p.y * dpr), 1, 1).data;
					ok({x: r.left + p.x, y: r.top + p.y, r: R, g: G, b: B, a: A});
				});
			})`, *cs.Lat, *cs.Lon), &pt)
			var wr, wg, wb int
			fmt.Sscanf(siteColour(cs.Site), "#%02x%02x%02x", &wr, &wg, &wb)
			if abs(pt.R-wr) > 3 || abs(pt.G-wg) > 3 || abs(pt.B-wb) > 3 || pt.A == 0 {
				t.Errorf("cell %s (%s): canvas pixel rgba(%d,%d,%d,%d), want %s", cs.Cell, cs.Site, pt.R, pt.G, pt.B, pt.A, siteColour(cs.Site))
			}
			tb.run(t, chromedp.ActionFunc(func(ctx context.Context) error {
				return input.DispatchMouseEvent(input.MouseMoved, pt.X, pt.Y).Do(ctx)
			}))
			tb.wait(t, "the hovered cell's info", fmt.Sprintf(`document.querySelector('#info').innerText.includes(%q)`, cs.Cell), 5*time.Second)
		}
		tb.checkClean(t, tb.state(t), agg.URL)
	})

	t.Run("api error", func(t *testing.T) {
		// A window longer than the aggregator allows: its 400 and its
		// words reach the status line, not the page's error log.
		tb := newTab(t, chrome, 30*time.Second)
		long := [2]time.Time{w.now.Add(-60 * 24 * time.Hour), w.now}
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, fixedWindow("catchment", long))))
		tb.wait(t, "the error shown", `document.querySelector('#status').textContent.includes('ask for a shorter one')`, 10*time.Second)
		s := tb.state(t)
		if len(s.Errors) > 0 {
			t.Errorf("an API error became a page error: %q", s.Errors)
		}
		if !strings.Contains(s.Status, "api/v1/catchment: 400") {
			t.Errorf("status %q does not name the request and its status", s.Status)
		}
	})

	t.Run("controls", func(t *testing.T) {
		since := len(agg.requests())
		tb := newTab(t, chrome, 90*time.Second)
		opened := time.Now()
		tb.run(t, chromedp.Navigate(pageURL(agg.URL, fixedWindow("catchment", w.winB))))
		tb.wait(t, "the map", `document.body.dataset.renders >= 1 && document.querySelector('#timeline .u-over') && window.catchmap.plot`, 20*time.Second)
		start := time.Now()
		countCatchment := func() int {
			n := 0
			for _, r := range agg.requests() {
				if strings.HasPrefix(r.URI, "/api/v1/catchment?") && strings.Contains(r.URI, "format=geojson") {
					n++
				}
			}
			return n
		}
		before := countCatchment()

		// Switching mode updates the URL and draws the diff, without a reload.
		tb.run(t, chromedp.Click(`input[name=mode][value=diff]`, chromedp.ByQuery))
		tb.wait(t, "diff mode", `location.search.includes('mode=diff') && document.querySelectorAll('path.cell.changed').length > 0`, 10*time.Second)
		tb.run(t, chromedp.Click(`input[name=mode][value=catchment]`, chromedp.ByQuery))
		tb.wait(t, "catchment mode", `location.search.includes('mode=catchment') && document.querySelectorAll('path.cell.changed').length == 0`, 10*time.Second)

		// Brushing the timeline over window A's results sets the window.
		var box struct{ X0, X1, Y float64 }
		tb.eval(t, fmt.Sprintf(`(() => { const u = catchmap.plot, r = u.over.getBoundingClientRect();
			return {x0: r.left + u.valToPos(%d, 'x'), x1: r.left + u.valToPos(%d, 'x'), y: r.top + r.height / 2}; })()`,
			w.winA[0].Add(-time.Minute).Unix(), w.winA[0].Add((aMinutes+1)*time.Minute).Unix()), &box)
		tb.run(t, chromedp.ActionFunc(func(ctx context.Context) error {
			if err := input.DispatchMouseEvent(input.MouseMoved, box.X0, box.Y).Do(ctx); err != nil {
				return err
			}
			if err := input.DispatchMouseEvent(input.MousePressed, box.X0, box.Y).WithButton(input.Left).WithClickCount(1).Do(ctx); err != nil {
				return err
			}
			for i := 1; i <= 10; i++ {
				x := box.X0 + (box.X1-box.X0)*float64(i)/10
				if err := input.DispatchMouseEvent(input.MouseMoved, x, box.Y).WithButton(input.Left).WithButtons(1).Do(ctx); err != nil {
					return err
				}
			}
			return input.DispatchMouseEvent(input.MouseReleased, box.X1, box.Y).WithButton(input.Left).WithClickCount(1).Do(ctx)
		}))
		winBFrom := url.QueryEscape(w.winB[0].Format(time.RFC3339))
		tb.wait(t, "the brushed window", fmt.Sprintf(`location.search.includes('from=') && !location.search.includes('from=%s') &&
			document.body.dataset.renders >= 4`, winBFrom), 10*time.Second)
		var search string
		tb.eval(t, "location.search", &search)
		q, _ := url.ParseQuery(strings.TrimPrefix(search, "?"))
		from, err1 := time.Parse(time.RFC3339Nano, q.Get("from"))
		to, err2 := time.Parse(time.RFC3339Nano, q.Get("to"))
		if err1 != nil || err2 != nil || from.After(w.winA[0]) || to.Before(w.winA[0].Add(aMinutes*time.Minute)) || !to.Before(w.winB[0]) {
			t.Fatalf("brushed window in the URL %q: want one around window A's results", search)
		}
		catchA := decode[maps.Catchment](t, "window A", agg.get(t, "/api/v1/catchment?"+url.Values{"target": {"k-root"}, "res": {"3"},
			"by": {"h3"}, "from": {w.winA[0].Format(time.RFC3339)}, "to": {w.winA[1].Format(time.RFC3339)}}.Encode()))
		tb.wait(t, "window A's cells", fmt.Sprintf(`document.querySelectorAll('path.cell').length == %d`, len(catchA.Cells)), 10*time.Second)
		_, brushed := agg.shown(t, "from="+url.QueryEscape(from.Format(isoMs)))
		checkCells(t, tb.state(t), brushed, false)

		// Hovering a cell tells its sites, RTTs and nearest site; a click pins it.
		var cell string
		tb.eval(t, `(() => { const p = document.querySelector('path.cell[data-site="lhr"]');
			p.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
			return p.dataset.cell; })()`, &cell)
		var infoText string
		tb.eval(t, `document.querySelector('#info').innerText`, &infoText)
		for _, want := range []string{cell, "lhr", "RTT p50", "nearest", "Inflation"} {
			if !strings.Contains(infoText, want) {
				t.Errorf("cell info %q lacks %q", infoText, want)
			}
		}

		// The probe dots come and go with their checkbox.
		tb.run(t, chromedp.Click(`#show-probes`, chromedp.ByQuery))
		tb.wait(t, "probe dots", `document.querySelectorAll('path.probe-dot').length > 0 && location.search.includes('probes=1')`, 10*time.Second)
		tb.run(t, chromedp.Click(`#show-probes`, chromedp.ByQuery))
		tb.wait(t, "no probe dots", `document.querySelectorAll('path.probe-dot').length == 0`, 10*time.Second)

		// "Use as before" pins the brushed window as the diff's A; the next
		// window chosen is compared with it.
		tb.run(t, chromedp.Click(`input[name=mode][value=diff]`, chromedp.ByQuery))
		tb.wait(t, "the diff panel", `!document.querySelector('#diff-panel').hidden`, 10*time.Second)
		tb.run(t, chromedp.Click(`#pin-before`, chromedp.ByQuery))
		tb.wait(t, "the pinned window", `location.search.includes('a_from=')`, 10*time.Second)
		var pinned string
		tb.eval(t, "location.search", &pinned)
		pq, _ := url.ParseQuery(strings.TrimPrefix(pinned, "?"))
		if pq.Get("a_from") != q.Get("from") || pq.Get("a_to") != q.Get("to") {
			t.Errorf("pinned before window %s..%s, want the brushed %s..%s", pq.Get("a_from"), pq.Get("a_to"), q.Get("from"), q.Get("to"))
		}

		// Live goes back to the last 15 minutes, and drops the window from the URL.
		tb.run(t, chromedp.Click(`#live`, chromedp.ByQuery))
		tb.wait(t, "live mode", `!location.search.includes('&from=') && !location.search.includes('?from=')`, 10*time.Second)
		liveAt := time.Now()
		tb.wait(t, "a live request", `performance.getEntriesByType('resource').some(e => e.name.includes('format=geojson') && e.startTime > performance.now() - 5000 && !e.name.includes('from=`+url.QueryEscape(from.Format(isoMs))+`'))`, 10*time.Second)
		lq, _ := url.Parse(agg.last(t, "/api/v1/catchment", "format=geojson"))
		liveFrom, _ := time.Parse(time.RFC3339Nano, lq.Query().Get("from"))
		if d := liveAt.Add(-15 * time.Minute).Sub(liveFrom); d < -time.Minute || d > time.Minute {
			t.Errorf("live window starts at %s, want about 15 minutes before %s", liveFrom, liveAt)
		}

		// Live: the page polls on its own, without reloading.
		var navs int
		tb.eval(t, "performance.getEntriesByType('navigation').length", &navs)
		// 8: the mode switches, the brush, the probe toggles, the pin and live.
		if _, err := testutil.Poll(time.Until(start.Add(25*time.Second)), func() error {
			if countCatchment() <= before+8 {
				return errors.New("no new catchment request")
			}
			return nil
		}); err != nil {
			t.Errorf("no poll of the catchment within %v", time.Since(start).Round(time.Second))
		}
		var url0 string
		tb.eval(t, "performance.getEntriesByType('navigation')[0].name", &url0)
		if navs != 1 || !strings.Contains(url0, "from="+winBFrom) {
			t.Errorf("the page reloaded: %d navigations, first %s", navs, url0)
		}
		// The registry is read at most every 30 s, however often the page
		// refreshes.
		registryReads := 0
		for _, r := range agg.requests()[since:] {
			if strings.HasPrefix(r.URI, api.Prefix+"/probes") {
				registryReads++
			}
		}
		if limit := 1 + int(time.Since(opened)/(30*time.Second)); registryReads == 0 || registryReads > limit {
			t.Errorf("the page read the probe registry %d times in %v, want 1 to %d", registryReads, time.Since(opened).Round(time.Second), limit)
		}
		tb.checkClean(t, tb.state(t), agg.URL)
		checkAnswered(t, agg, agg.requests()[since:])
	})

	t.Run("read token", func(t *testing.T) {
		// As `openssl rand -base64 32` makes them, pasted into the
		// fragment as it is.
		const tok = "q+Vh/3Zk9bW0r+LxT2m8cN1yJ4pD7sA5eG6fH0iK3lM="
		aggT := serve(t, w, st, tok)
		page := pageURL(aggT.URL, fixedWindow("catchment", w.winB))

		// Without the token the page says how to give it.
		bare := newTab(t, chrome, 30*time.Second)
		bare.run(t, chromedp.Navigate(page))
		bare.wait(t, "the token hint", `document.querySelector('#status').textContent.includes('#token=READ_TOKEN')`, 10*time.Second)
		if errs := bare.state(t).Errors; len(errs) > 0 {
			t.Errorf("a 401 became a page error: %q", errs)
		}
		// Close the tokenless page before counting, so its polls are not
		// taken for the token page's requests.
		bare.run(t, chromedp.Navigate("about:blank"))
		if err := chromedp.Cancel(bare.ctx); err != nil {
			t.Fatalf("closing the tokenless tab: %v", err)
		}

		tb := newTab(t, chrome, 60*time.Second)
		n0 := len(aggT.requests())
		tb.run(t, chromedp.Navigate(page+"#token="+tok))
		tb.wait(t, "the map with the token", rendered, 20*time.Second)
		s := tb.state(t)
		if strings.Contains(s.Href, tok) || strings.Contains(s.Href, "#") {
			t.Errorf("the token stayed in the address bar: %s", s.Href)
		}
		var kept string
		tb.eval(t, `sessionStorage.getItem('catchmap.token')`, &kept)
		if kept != tok {
			t.Errorf("sessionStorage holds %d bytes for the token, want it", len(kept))
		}
		reqs := aggT.requests()[n0:]
		if len(reqs) < 5 {
			t.Errorf("the page sent only %d API requests", len(reqs))
		}
		checkAnswered(t, aggT, reqs)
		_, c := aggT.shown(t)
		checkCells(t, s, c, false)
		checkProbeNames(t, aggT, s)

		// Links cannot carry the token: the buttons fetch with it.
		_, body := tb.download(t, "#dl-csv")
		checkCSV(t, body, s)
		_, body = tb.download(t, "#dl-geojson")
		fc := decode[featureCollection](t, "the GeoJSON download", body)
		cells := 0
		for _, f := range fc.Features {
			if f.Properties.Kind == maps.KindCell {
				cells++
			}
		}
		if cells != len(s.Cells) {
			t.Errorf("the GeoJSON download has %d cells, the map %d", cells, len(s.Cells))
		}

		// A reload (the address bar as it is now) keeps the token.
		n1 := len(aggT.requests())
		tb.run(t, chromedp.Reload())
		tb.wait(t, "the reloaded map", rendered+` && performance.getEntriesByType('navigation')[0].type == 'reload'`, 20*time.Second)
		checkAnswered(t, aggT, aggT.requests()[n1:])
		screenshot(t, tb, "read-token")
		tb.checkClean(t, tb.state(t), aggT.URL)
	})
}

// BenchmarkRender10k measures, in a real Chromium against the real
// aggregator over a SQLite store seeded with 10,000 probes in distinct H3
// cells, the time from navigation to the cells drawn (app.js's
// catchmap:cells-drawn mark). It includes the aggregator computing the
// catchment. Target: at most 1.5 s on the project's 2-core machine.
func BenchmarkRender10k(b *testing.B) {
	chrome := newBrowser(b)
	w := newWorld()
	agg := serve(b, w, seedStore(b, w, w.wideRecords(b, "wide", 10_000)...), "")
	q := fixedWindow("catchment", w.winB)
	q.Set("target", "wide")
	page := pageURL(agg.URL, q)
	b.ResetTimer()
	var total, data float64
	for i := 0; i < b.N; i++ {
		tb := newTab(b, chrome, 60*time.Second)
		tb.run(b, chromedp.Navigate(page))
		tb.wait(b, "10,000 cells drawn", `performance.getEntriesByName('catchmap:cells-drawn').length > 0`, 30*time.Second)
		var res struct {
			Data, Drawn float64
			Cells       int
		}
		tb.eval(b, `({data: performance.getEntriesByName('catchmap:data')[0].startTime,
			drawn: performance.getEntriesByName('catchmap:cells-drawn')[0].startTime,
			cells: +document.body.dataset.cells * !!document.querySelector('#map canvas')})`, &res)
		if res.Cells < 10_000 {
			b.Fatalf("drew %d cells, want 10,000", res.Cells)
		}
		total += res.Drawn
		data += res.Data
		var marks any
		// With when the catchment was asked for, began to arrive and arrived.
		tb.eval(b, `performance.getEntriesByType('mark').map(m => m.name + ' ' + Math.round(m.startTime) + ' ms').concat(
			performance.getEntriesByType('resource').filter(e => e.name.includes('api/v1/catchment')).map(e =>
				'catchment asked ' + Math.round(e.startTime) + ' ms, first byte ' + Math.round(e.responseStart) +
				' ms, last ' + Math.round(e.responseEnd) + ' ms, ' + Math.round(e.encodedBodySize / 1e3) + ' kB'))`, &marks)
		b.Logf("%v", marks)
		if err := chromedp.Cancel(tb.ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(total/float64(b.N), "ms-to-cells")
	// How much of it is the page loading and the aggregator answering.
	b.ReportMetric(data/float64(b.N), "ms-to-data")
}
