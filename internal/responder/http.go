package responder

import (
	"fmt"
	"net"
	"net/http"
)

// TracePath is where Cloudflare serves the trace body that names the site.
const TracePath = "/cdn-cgi/trace"

// HTTP returns a handler that answers every request like a CDN edge in site
// colo: status 200, the response header name set to value (e.g. "cf-ray",
// "7bd32409eda7b020-SJC"; no header when name is empty), and a
// /cdn-cgi/trace-like body whose colo= line is colo (e.g. "SJC").
// Every path gets the same answer, so either way of reading the site works.
func HTTP(name, value, colo string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name != "" {
			w.Header().Set(name, value)
		}
		w.Header().Set("Content-Type", "text/plain")
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		fmt.Fprintf(w, "fl=1f1\nh=%s\nip=%s\nvisit_scheme=%s\nuag=%s\ncolo=%s\nhttp=%s\n",
			r.Host, ip, scheme, r.UserAgent(), colo, r.Proto)
	})
}
