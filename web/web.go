// Package web is catchmap's browser UI: a catchment map that the aggregator
// serves at /. Everything the page needs (its scripts, styles, the vendored
// Leaflet, uPlot, topojson-client and the Natural Earth basemap) is embedded
// here, so the page works offline and asks nothing of any other origin; the
// data comes from the aggregator's own /api/v1 routes.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static vendor
var files embed.FS

// csp keeps the page on its own origin even if a script tried otherwise.
// Leaflet and uPlot set element styles from script, which style-src does
// not govern, so no 'unsafe-inline' is needed.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"

// Handler serves the page at / and its files under /static/ and /vendor/,
// answering 404 for any other path. Mount it after the API routes.
//
// Embedded files have no modification time, so each gets an ETag from its
// content and "no-cache": browsers revalidate (a cheap 304) and never mix
// old and new modules, or an old script with a new index.html, after an
// upgrade.
func Handler() http.Handler {
	type file struct {
		data []byte
		etag string
	}
	byPath := map[string]file{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		sum := sha256.Sum256(b)
		byPath["/"+p] = file{b, `"` + hex.EncodeToString(sum[:8]) + `"`}
		return err
	})
	if err != nil {
		panic("web: reading the embedded files: " + err.Error()) // a build defect, not a runtime state
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the web UI is read-only", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == "/" {
			p = "/static/index.html"
		}
		f, ok := byPath[p]
		if !ok || p == "/static/index.html" && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasSuffix(p, ".html") {
			h.Set("Content-Security-Policy", csp)
		}
		// ServeContent sets Content-Type from the extension and answers
		// If-None-Match and Range.
		http.ServeContent(w, r, path.Base(p), time.Time{}, bytes.NewReader(f.data))
	})
}
