package web

import (
	"net/http"
	"net/http/httptest"
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
	for _, p := range []string{"static/index.html", "static/app.js", "static/style.css", "static/errors.js", "vendor/leaflet/leaflet.css", "vendor/uplot/uPlot.min.css"} {
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
