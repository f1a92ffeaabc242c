package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	for _, c := range []struct {
		path, ctype string
		code        int
	}{
		{"/", "text/html; charset=utf-8", 200},
		{"/static/app.js", "text/javascript; charset=utf-8", 200},
		{"/static/style.css", "text/css; charset=utf-8", 200},
		{"/static/favicon.svg", "image/svg+xml", 200},
		{"/vendor/leaflet/leaflet.js", "text/javascript; charset=utf-8", 200},
		{"/vendor/world-atlas/countries-110m.json", "application/json", 200},
		{"/vendor/leaflet/images/layers.png", "image/png", 200},
		{"/vendor/leaflet/LICENSE", "text/plain; charset=utf-8", 200},
		{"/static/index.html", "", 404}, // one address for the page
		{"/static/", "", 404},           // no directory listings
		{"/vendor/", "", 404},
		{"/nope", "", 404},
		{"/api/v1/targets", "", 404}, // the API is mounted by the server, not here
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.code {
			t.Errorf("GET %s: status %d, want %d", c.path, rec.Code, c.code)
			continue
		}
		if c.code != 200 {
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", c.path, got)
		}
		if rec.Header().Get("ETag") == "" || rec.Body.Len() == 0 {
			t.Errorf("GET %s: no ETag or empty body", c.path)
		}
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("page CSP %q does not keep requests on the origin", csp)
	}
	etag := rec.Header().Get("ETag")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("GET / with its ETag: status %d, want 304", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d Allow %q, want 405 and GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestNoRemoteURLs guards the offline promise at the source: nothing the
// page loads may be named by an absolute URL. The browser test checks the
// requests themselves; this one names the file and line. A link for people
// (the attribution's) is not a load.
func TestNoRemoteURLs(t *testing.T) {
	load := regexp.MustCompile(`(url\(|src=|fetch\(|import |@import )\s*["']?(https?:)?//`)
	static, err := fs.Glob(files, "static/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(static, "vendor/leaflet/leaflet.css", "vendor/uplot/uPlot.min.css") {
		b, err := files.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if load.MatchString(line) {
				t.Errorf("%s:%d loads from a remote URL: %.120s", p, i+1, strings.TrimSpace(line))
			}
		}
	}
}

var (
	// importRE finds the module specifier of each static import and
	// re-export (import {a, b as c} from "./x.js", import "./x.js",
	// export {a} from "./x.js") and the bindings it names.
	importRE     = regexp.MustCompile(`(?m)^(?:import|export)\s*(?:([\w$*{}\s,]+?)\s*from\s*)?["']([^"']+)["']`)
	importLineRE = regexp.MustCompile(`(?m)^import\b`)
	// exportRE finds what a module declares for others to import.
	exportRE     = regexp.MustCompile(`(?m)^export\s+(?:async\s+)?(?:function\*?|const|let|var|class)\s+([\w$]+)`)
	exportListRE = regexp.MustCompile(`(?m)^export\s*\{([^}]*)\}`)
	// moduleRE finds the page's module entry points.
	moduleRE = regexp.MustCompile(`<script type="module" src="([^"]+)">`)
)

// TestModules checks the page's ES modules as the browser would load them,
// without one: every import names an embedded file by a relative path (no
// bare names, no URLs: there is no bundler and no network) and only names
// it exports; every module in static/ is reached from index.html's entry,
// and each is served with a JavaScript MIME type, which browsers require of
// modules. A missing module or name would otherwise only fail in a browser.
func TestModules(t *testing.T) {
	page, err := files.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	var queue []string
	for _, m := range moduleRE.FindAllStringSubmatch(string(page), -1) {
		queue = append(queue, m[1])
	}
	if len(queue) == 0 {
		t.Fatal("index.html loads no module")
	}
	exports := func(p string) map[string]bool {
		b, _ := files.ReadFile(p)
		names := map[string]bool{}
		for _, m := range exportRE.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		for _, m := range exportListRE.FindAllStringSubmatch(string(b), -1) {
			for _, e := range strings.Split(m[1], ",") {
				if f := strings.Fields(e); len(f) > 0 {
					names[f[len(f)-1]] = true
				}
			}
		}
		return names
	}
	h := Handler()
	reached := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if reached[p] {
			continue
		}
		reached[p] = true
		b, err := files.ReadFile(p)
		if err != nil {
			t.Errorf("%s is loaded as a module but not embedded", p)
			continue
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+p, nil))
		if ct := rec.Header().Get("Content-Type"); rec.Code != 200 || !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("GET /%s: status %d, Content-Type %q; a module needs 200 and text/javascript", p, rec.Code, ct)
		}
		found := importRE.FindAllStringSubmatch(string(b), -1)
		parsed := 0
		for _, m := range found {
			if strings.HasPrefix(m[0], "import") {
				parsed++
			}
		}
		if n := len(importLineRE.FindAllString(string(b), -1)); n != parsed {
			t.Errorf("%s has %d import statements, this test understood %d: update importRE", p, n, parsed)
		}
		for _, m := range found {
			bindings, spec := m[1], m[2]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative paths to embedded files resolve offline", p, spec)
				continue
			}
			dep := path.Join(path.Dir(p), spec)
			if _, err := fs.Stat(files, dep); err != nil {
				t.Errorf("%s imports %q, but %s is not embedded", p, spec, dep)
				continue
			}
			queue = append(queue, dep)
			if open, close := strings.Index(bindings, "{"), strings.Index(bindings, "}"); open >= 0 && close > open {
				have := exports(dep)
				for _, e := range strings.Split(bindings[open+1:close], ",") {
					if f := strings.Fields(e); len(f) > 0 && !have[f[0]] {
						t.Errorf("%s imports %s from %q, which does not export it", p, f[0], spec)
					}
				}
			}
		}
	}
	// Classic scripts (errors.js runs before any module) are not modules.
	classic := regexp.MustCompile(`<script src="(static/[^"]+)">`)
	for _, m := range classic.FindAllStringSubmatch(string(page), -1) {
		reached[m[1]] = true
	}
	all, _ := fs.Glob(files, "static/*.js")
	for _, p := range all {
		if !reached[p] {
			t.Errorf("%s is embedded but neither index.html nor any module loads it", p)
		}
	}
}
