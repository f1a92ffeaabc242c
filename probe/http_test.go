package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/catchmap/catchmap/probe/identify"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// measureSpec runs spec end to end through a Measurer and returns its one
// record.
func measureSpec(t *testing.T, sp spec.Spec) result.Record {
	t.Helper()
	m := NewMeasurer(slog.New(slog.DiscardHandler))
	recs, err := m.Measure(t.Context(), sp)
	if err != nil {
		t.Fatalf("Measure(%+v): %v", sp, err)
	}
	if len(recs) != 1 {
		t.Fatalf("Measure(%+v): %d records, want 1: %+v", sp, len(recs), recs)
	}
	return recs[0]
}

// seen records what a test server received.
type seen struct {
	mu      sync.Mutex
	host    string
	sni     string
	method  string
	path    string
	headers http.Header
}

func (s *seen) get() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{host: s.host, sni: s.sni, method: s.method, path: s.path, headers: s.headers}
}

// popServer starts an httptest server on 127.0.0.1 whose handler sets the
// given response headers and status and writes body. With useTLS it
// serves TLS (and h2), recording the SNI the client sent.
func popServer(t *testing.T, useTLS bool, status int, header map[string][]string, body string) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.host, s.method, s.path, s.headers = r.Host, r.Method, r.URL.Path, r.Header.Clone()
		s.mu.Unlock()
		for k, vs := range header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	// Handshake failures are what some tests provoke: keep them out of the
	// test log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = hello.ServerName
			s.mu.Unlock()
			return nil, nil
		}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, s
}

func hostPort(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// directTarget builds a Target for calling measureHTTP without a Measurer,
// for identifiers a Spec can only get from a preset (Last, Body, Path):
// presets are another package's work, so these tests do not depend on
// their names.
func directTarget(t *testing.T, rawURL, addr string, id *spec.Identifier, sp spec.Spec) Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if id.Matcher == nil {
		id.Matcher, _ = identify.NewMatcher()
	}
	sp.Method = result.MethodHTTP
	sp.Target = rawURL
	return Target{Spec: &sp, Addr: netip.MustParseAddrPort(addr), Host: u.Hostname(), URL: u, Ident: id}
}

func mustMatcher(t *testing.T, patterns ...string) *identify.Matcher {
	t.Helper()
	m, err := identify.NewMatcher(patterns...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHTTPConnectToTLSKeepsHostAndSNI(t *testing.T) {
	srv, s := popServer(t, true, http.StatusOK, map[string][]string{
		"X-Served-By": {"cache-iad-kcgs7200076-IAD, cache-fra-eddf8230071-FRA"},
	}, "hello")
	id := &spec.Identifier{Header: "x-served-by", Last: true,
		Matcher: mustMatcher(t, `cache-[a-z0-9-]+-([A-Z]{3})\s*$`)}
	tg := directTarget(t, "https://www.example.test/index.html", hostPort(srv), id, spec.Spec{Insecure: true})
	var r result.Record
	if err := measureHTTP(t.Context(), tg, &r); err != nil {
		t.Fatalf("measureHTTP: %v (%+v)", err, r)
	}
	got := s.get()
	if got.host != "www.example.test" || got.sni != "www.example.test" {
		t.Errorf("server saw Host %q, SNI %q; want www.example.test for both", got.host, got.sni)
	}
	if r.Identity != "cache-fra-eddf8230071-FRA" || r.Site != "fra" {
		t.Errorf("identity %q site %q, want the last x-served-by entry and fra", r.Identity, r.Site)
	}
	h := r.HTTP
	if h == nil || h.Status != 200 || h.Proto != "HTTP/2.0" {
		t.Fatalf("HTTP = %+v, want status 200 over HTTP/2.0", h)
	}
	if h.ConnectMs <= 0 || h.TLSMs <= 0 || h.FirstByteMs <= 0 || h.TotalMs < h.FirstByteMs {
		t.Errorf("phases %+v: want connect, tls and first byte > 0 and total >= first byte", h)
	}
	if r.RTTMs != h.ConnectMs {
		t.Errorf("RTTMs %v, want the connect time %v", r.RTTMs, h.ConnectMs)
	}
}

func TestHTTPEndToEnd(t *testing.T) {
	headers := map[string][]string{
		"Cf-Ray":       {"7bd32409eda7b020-SJC"},
		"X-Amz-Cf-Pop": {"SIN52-P1"},
	}
	okSrv, okSeen := popServer(t, false, http.StatusOK, headers, "ok")
	errSrv, _ := popServer(t, false, http.StatusInternalServerError, headers, "boom")
	redirSrv, _ := popServer(t, false, http.StatusFound, map[string][]string{
		"Location": {"http://elsewhere.example.test/"}, "Cf-Ray": {"8a-LHR"}}, "")
	tlsSrv, _ := popServer(t, true, http.StatusOK, headers, "ok")

	tests := []struct {
		name       string
		spec       spec.Spec
		kind       result.ErrorKind
		identity   string
		site       string
		status     int
		wantMethod string
	}{
		{name: "cf-ray", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: hostPort(okSrv),
			SiteHeader: "cf-ray", SiteRegex: `-([A-Z]{3})$`, RequestHeaders: []string{"Pragma: akamai-x-cache-on"}},
			identity: "7bd32409eda7b020-SJC", site: "sjc", status: 200, wantMethod: "GET"},
		{name: "head", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: hostPort(okSrv), HTTPMethod: "head",
			SiteHeader: "x-amz-cf-pop", SiteRegex: `^([A-Z]{3})\d+-`},
			identity: "SIN52-P1", site: "sin", status: 200, wantMethod: "HEAD"},
		{name: "500 still identifies", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: hostPort(errSrv),
			SiteHeader: "x-amz-cf-pop", SiteRegex: `^([A-Z]{3})\d+-`},
			kind: result.KindHTTPStatus, identity: "SIN52-P1", site: "sin", status: 500},
		{name: "redirect not followed", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: hostPort(redirSrv),
			SiteHeader: "cf-ray", SiteRegex: `-([A-Z]{3})$`},
			identity: "8a-LHR", site: "lhr", status: 302},
		{name: "no such header", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: hostPort(okSrv),
			SiteHeader: "x-served-by"},
			kind: result.KindNoIdentity, status: 200},
		{name: "timing only", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: hostPort(okSrv)}, status: 200},
		{name: "tls insecure", spec: spec.Spec{Target: "https://www.example.test/", ConnectTo: hostPort(tlsSrv), Insecure: true,
			SiteHeader: "cf-ray", SiteRegex: `-([A-Z]{3})$`},
			identity: "7bd32409eda7b020-SJC", site: "sjc", status: 200},
		{name: "tls unverified", spec: spec.Spec{Target: "https://www.example.test/", ConnectTo: hostPort(tlsSrv),
			SiteHeader: "cf-ray"}, kind: result.KindTLS},
		{name: "tls to plain http", spec: spec.Spec{Target: "https://www.example.test/", ConnectTo: hostPort(okSrv),
			SiteHeader: "cf-ray"}, kind: result.KindTLS},
		{name: "refused", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: closedPort(t),
			SiteHeader: "cf-ray"}, kind: result.KindRefused},
		{name: "timeout", spec: spec.Spec{Target: "http://www.example.test/", ConnectTo: silentServer(t),
			SiteHeader: "cf-ray", Timeout: spec.Duration(200 * time.Millisecond)}, kind: result.KindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Method = result.MethodHTTP
			r := measureSpec(t, tt.spec)
			if r.ErrorKind != tt.kind || (tt.kind == result.KindNone) != (r.Error == "") {
				t.Fatalf("kind %q error %q, want kind %q", r.ErrorKind, r.Error, tt.kind)
			}
			if r.Identity != tt.identity || r.Site != tt.site {
				t.Errorf("identity %q site %q, want %q %q", r.Identity, r.Site, tt.identity, tt.site)
			}
			if tt.status != 0 && (r.HTTP == nil || r.HTTP.Status != tt.status) {
				t.Errorf("HTTP %+v, want status %d", r.HTTP, tt.status)
			}
			if tt.status != 0 && r.RTTMs <= 0 {
				t.Errorf("RTTMs %v, want > 0", r.RTTMs)
			}
			if r.Addr != "127.0.0.1" || r.AF != 4 || r.Method != result.MethodHTTP {
				t.Errorf("addr %q af %d method %q", r.Addr, r.AF, r.Method)
			}
			if tt.wantMethod != "" {
				got := okSeen.get()
				if got.method != tt.wantMethod || got.host != "www.example.test" {
					t.Errorf("server saw %s Host %q, want %s Host www.example.test", got.method, got.host, tt.wantMethod)
				}
				for _, l := range tt.spec.RequestHeaders {
					name, value, _ := strings.Cut(l, ":")
					if got.headers.Get(name) != strings.TrimSpace(value) {
						t.Errorf("server saw %s: %q, want %q", name, got.headers.Get(name), value)
					}
				}
			}
		})
	}
}

func TestHTTPBodyIdentity(t *testing.T) {
	trace := "fl=123abc\nh=www.example.test\nip=192.0.2.1\nts=1700000000.1\nvisit_scheme=https\ncolo=HKG\nhttp=http/1.1\n"
	srv, s := popServer(t, false, http.StatusOK, nil, trace)
	colo := mustMatcher(t, `(?m)^colo=([A-Z]{3})$`)
	for _, tt := range []struct {
		name, method string
		kind         result.ErrorKind
		identity     string
	}{
		{name: "get", method: "GET", identity: "colo=HKG"},
		{name: "head has no body", method: "HEAD", kind: result.KindNoIdentity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := &spec.Identifier{Body: true, Path: "/cdn-cgi/trace", Matcher: colo}
			tg := directTarget(t, "http://www.example.test/some/page?q=1", hostPort(srv), id, spec.Spec{HTTPMethod: tt.method})
			var r result.Record
			err := measureHTTP(t.Context(), tg, &r)
			if (err == nil) != (tt.kind == result.KindNone) || r.ErrorKind != tt.kind {
				t.Fatalf("err %v kind %q, want kind %q", err, r.ErrorKind, tt.kind)
			}
			if r.Identity != tt.identity {
				t.Errorf("identity %q, want %q", r.Identity, tt.identity)
			}
			if tt.identity != "" && r.Site != "hkg" {
				t.Errorf("site %q, want hkg", r.Site)
			}
			if p := s.get().path; p != "/cdn-cgi/trace" {
				t.Errorf("server saw path %q, want /cdn-cgi/trace", p)
			}
		})
	}
}

// rawServer answers every connection with resp, byte for byte, so tests can
// send what net/http's server would never write.
func rawServer(t *testing.T, resp []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = c.Write(resp)
			})
		}
	})
	return ln.Addr().String()
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address with no listener.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTPHostileHeaders(t *testing.T) {
	var many strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&many, "X-Served-By: cache-lon%d-LHR\r\n", i)
	}
	many.WriteString("X-Served-By: cache-ams-eham1-AMS, \r\n")
	huge := "X-Pop: \t\xff\xfeFRA\x80 " + strings.Repeat("A", 100_000) + "\r\n"
	tooBig := "X-Pop: " + strings.Repeat("B", maxResponseHeaderBytes+1) + "\r\n"
	const lastRe = `cache-[a-z0-9-]+-([A-Z]{3})\s*$`

	tests := []struct {
		name, status string
		header, site string
		last         bool
		pattern      string
		kind         result.ErrorKind
		identity     string
	}{
		{name: "many values", header: many.String(), site: "ams", last: true, pattern: lastRe,
			identity: "cache-ams-eham1-AMS"},
		{name: "huge value with junk", header: huge, pattern: `^(FRA)`, site: "fra"},
		{name: "headers beyond the cap", header: tooBig, kind: result.KindNetwork},
		{name: "long reason phrase", status: "HTTP/1.1 503 " + strings.Repeat("\xffslow down ", 5000),
			header: "X-Pop: SIN52-P1\r\n", pattern: `^([A-Z]{3})\d+-`, site: "sin", kind: result.KindHTTPStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == "" {
				tt.status = "HTTP/1.1 200 OK"
			}
			resp := tt.status + "\r\nContent-Length: 2\r\n" + tt.header + "\r\nok"
			addr := rawServer(t, []byte(resp))
			name := "x-pop"
			if tt.last {
				name = "x-served-by"
			}
			id := &spec.Identifier{Header: name, Last: tt.last}
			if tt.pattern != "" {
				id.Matcher = mustMatcher(t, tt.pattern)
			}
			tg := directTarget(t, "http://www.example.test/", addr, id, spec.Spec{})
			var r result.Record
			err := measureHTTP(t.Context(), tg, &r)
			if r.ErrorKind != tt.kind || (err == nil) != (tt.kind == result.KindNone) {
				t.Fatalf("err %v kind %q, want kind %q", err, r.ErrorKind, tt.kind)
			}
			if err != nil && len(err.Error()) > 1000 {
				t.Errorf("error message is %d bytes: the hostile header leaked into it", len(err.Error()))
			}
			if len(r.Identity) > MaxIdentityLen || !utf8.ValidString(r.Identity) ||
				strings.IndexFunc(r.Identity, unicode.IsControl) >= 0 {
				t.Errorf("identity %q: want at most %d bytes of valid UTF-8 without control characters",
					r.Identity, MaxIdentityLen)
			}
			if tt.identity != "" && r.Identity != tt.identity {
				t.Errorf("identity %q, want %q", r.Identity, tt.identity)
			}
			if r.Site != tt.site {
				t.Errorf("site %q, want %q", r.Site, tt.site)
			}
		})
	}
}

func TestHTTPDeadlineFromContext(t *testing.T) {
	addr := silentServer(t)
	tg := directTarget(t, "http://www.example.test/", addr, &spec.Identifier{Header: "cf-ray"}, spec.Spec{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var r result.Record
	err := measureHTTP(ctx, tg, &r)
	if !errors.Is(err, context.DeadlineExceeded) || r.ErrorKind != result.KindTimeout {
		t.Fatalf("err %v kind %q, want a deadline error of kind timeout", err, r.ErrorKind)
	}
}

func TestHeaderIdentity(t *testing.T) {
	tests := []struct {
		values []string
		last   bool
		want   string
	}{
		{values: nil, want: ""},
		{values: []string{"7bd32409eda7b020-SJC"}, want: "7bd32409eda7b020-SJC"},
		{values: []string{"a, b", "c"}, want: "a, b"},
		{values: []string{"a, b", "c , d "}, last: true, want: "d"},
		{values: []string{"a, b", " , ,"}, last: true, want: "b"},
		{values: []string{",,,"}, last: true, want: ""},
		{values: []string{"\x00\x1bSIN\x7f52\u0085-P1\n"}, want: "SIN 52 -P1"}, // control characters keep words apart
		{values: []string{strings.Repeat("é", 200)}, want: strings.Repeat("é", MaxIdentityLen/2)},
	}
	for _, tt := range tests {
		if got := headerIdentity(tt.values, tt.last); got != tt.want {
			t.Errorf("headerIdentity(%q, %v) = %q, want %q", tt.values, tt.last, got, tt.want)
		}
	}
}

func TestBodyIdentity(t *testing.T) {
	colo := mustMatcher(t, `(?m)^colo=([A-Z]{3})$`)
	tests := []struct {
		body string
		m    *identify.Matcher
		want string
	}{
		{body: "fl=1\r\ncolo=HKG\r\nhttp=2\r\n", m: colo, want: "colo=HKG"},
		{body: "colo=hkg\ncolo=NRT", m: colo, want: "colo=NRT"},
		{body: "nothing here", m: colo, want: ""},
		{body: "\n\n  first line  \nsecond", m: mustMatcher(t), want: "first line"},
		{body: "", m: colo, want: ""},
	}
	for _, tt := range tests {
		if got := bodyIdentity([]byte(tt.body), tt.m); got != tt.want {
			t.Errorf("bodyIdentity(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// Specs a measurement could never run are refused before anything is sent.
func TestHTTPBadSpec(t *testing.T) {
	for name, sp := range map[string]spec.Spec{
		"bad request header": {RequestHeaders: []string{"no colon here"}},
		"bad method":         {HTTPMethod: "POST"},
		"host header":        {RequestHeaders: []string{"Host: elsewhere.test"}},
	} {
		t.Run(name, func(t *testing.T) {
			sp.Target, sp.Method = "http://www.example.test/", result.MethodHTTP
			sp.ConnectTo = "127.0.0.1:1"
			_, err := NewMeasurer(slog.New(slog.DiscardHandler)).Measure(t.Context(), sp)
			if !errors.Is(err, spec.ErrBadSpec) {
				t.Fatalf("Measure: %v, want ErrBadSpec", err)
			}
		})
	}
}
