package responder

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/internal/testutil"
)

// TestMain fails the package when goroutines outlive the tests: every
// server a test starts must be shut down.
func TestMain(m *testing.M) {
	testutil.Main(m, "catchmap/internal/responder.", "github.com/miekg/dns.", "net/http.(*Server)")
}

func query(name string, class uint16, nsid bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	m.Question[0].Qclass = class
	if nsid {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	}
	return m
}

func exchange(t *testing.T, network, addr string, m *dns.Msg) (*dns.Msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := &dns.Client{Net: network}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	return r, err
}

func TestChaosAnswers(t *testing.T) {
	d := NewDNS(`ns1."fra" 1`)
	d.NSID = []byte("fra-7")
	addr := testutil.Serve(t, d, "")
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name  string
			class uint16
			rcode int
			want  string
		}{
			{"hostname.bind.", dns.ClassCHAOS, dns.RcodeSuccess, `ns1.\"fra\" 1`},
			{"ID.SERVER.", dns.ClassCHAOS, dns.RcodeSuccess, `ns1.\"fra\" 1`},
			{"version.bind.", dns.ClassCHAOS, dns.RcodeSuccess, DefaultVersion},
			{"version.server.", dns.ClassCHAOS, dns.RcodeSuccess, DefaultVersion},
			{"hostname.bind.", dns.ClassINET, dns.RcodeRefused, ""},
			{"example.invalid.", dns.ClassCHAOS, dns.RcodeRefused, ""},
		} {
			t.Run(network+"/"+tc.name+"/"+dns.Class(tc.class).String(), func(t *testing.T) {
				r, err := exchange(t, network, addr, query(tc.name, tc.class, true))
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != tc.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				var got string
				if len(r.Answer) == 1 {
					txt := r.Answer[0].(*dns.TXT)
					got = strings.Join(txt.Txt, "")
					if txt.Hdr.Name != tc.name || txt.Hdr.Class != tc.class {
						t.Errorf("answer owner %s %s, want the question's", txt.Hdr.Name, dns.Class(txt.Hdr.Class))
					}
				}
				if got != tc.want {
					t.Errorf("answer %q, want %q", got, tc.want)
				}
				nsid := r.IsEdns0().Option[0].(*dns.EDNS0_NSID).Nsid
				if nsid != hex.EncodeToString([]byte("fra-7")) {
					t.Errorf("nsid %s, want fra-7 hex-encoded", nsid)
				}
			})
		}
	}
	udp, tcp := d.Queries()
	if udp != 6 || tcp != 6 {
		t.Errorf("queries udp=%d tcp=%d, want 6 each", udp, tcp)
	}
}

func TestNSIDOnlyWhenAsked(t *testing.T) {
	d := NewDNS("site")
	d.NSID = []byte("x")
	addr := testutil.Serve(t, d, "")
	r, err := exchange(t, "udp", addr, query("hostname.bind.", dns.ClassCHAOS, false))
	if err != nil {
		t.Fatal(err)
	}
	if r.IsEdns0() != nil {
		t.Errorf("answer has EDNS though the query had none: %v", r)
	}
	m := query("hostname.bind.", dns.ClassCHAOS, false)
	m.SetEdns0(1232, false)
	if r, err = exchange(t, "udp", addr, m); err != nil {
		t.Fatal(err)
	}
	if opt := r.IsEdns0(); opt == nil || len(opt.Option) != 0 {
		t.Errorf("answer OPT %v, want EDNS without NSID", opt)
	}
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode   Mode
		udp    func(t *testing.T, r *dns.Msg, err error)
		tcp    func(t *testing.T, r *dns.Msg, err error)
		silent bool
	}{
		{mode: ModeServfail, udp: wantRcode(dns.RcodeServerFailure), tcp: wantRcode(dns.RcodeServerFailure)},
		{mode: ModeRefused, udp: wantRcode(dns.RcodeRefused), tcp: wantRcode(dns.RcodeRefused)},
		{mode: ModeNotimpBare, udp: wantBare, tcp: wantBare},
		{mode: ModeSilent, silent: true},
		{mode: ModeMismatch, udp: wantMismatch, tcp: wantMismatch},
		{mode: ModeTruncate, udp: wantTruncated(0), tcp: wantText("site")},
		{mode: ModeGarbage, udp: wantUnpackError, tcp: wantUnpackError},
		{mode: ModeOversized, udp: wantTruncated(0), tcp: wantText("site" + strings.Repeat("x", OversizedLen-4))},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			d := NewDNS("site")
			d.Mode = tc.mode
			addr := testutil.Serve(t, d, "")
			if tc.silent {
				for _, network := range []string{"udp", "tcp"} {
					ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
					_, _, err := (&dns.Client{Net: network}).ExchangeContext(ctx, query("hostname.bind.", dns.ClassCHAOS, true), addr)
					cancel()
					if err == nil {
						t.Errorf("%s: got an answer from a silent server", network)
					}
				}
				return
			}
			r, err := exchange(t, "udp", addr, query("hostname.bind.", dns.ClassCHAOS, true))
			tc.udp(t, r, err)
			r, err = exchange(t, "tcp", addr, query("hostname.bind.", dns.ClassCHAOS, true))
			tc.tcp(t, r, err)
		})
	}
}

func wantRcode(rcode int) func(*testing.T, *dns.Msg, error) {
	return func(t *testing.T, r *dns.Msg, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != rcode || len(r.Answer) != 0 {
			t.Errorf("got %s with %d answers, want %s with none", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[rcode])
		}
	}
}

func wantBare(t *testing.T, r *dns.Msg, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNotImplemented || len(r.Question) != 0 || len(r.Answer) != 0 || len(r.Extra) != 0 || r.Len() != 12 {
		t.Errorf("got %v, want a bare 12-byte NOTIMP header", r)
	}
}

func wantMismatch(t *testing.T, r *dns.Msg, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Question) != 1 || r.Question[0].Name != MismatchQName || r.Question[0].Qclass != dns.ClassINET {
		t.Errorf("question %v, want %s IN", r.Question, MismatchQName)
	}
}

func wantTruncated(answers int) func(*testing.T, *dns.Msg, error) {
	return func(t *testing.T, r *dns.Msg, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if !r.Truncated || len(r.Answer) != answers {
			t.Errorf("TC=%v with %d answers, want TC with %d", r.Truncated, len(r.Answer), answers)
		}
	}
}

func wantText(text string) func(*testing.T, *dns.Msg, error) {
	return func(t *testing.T, r *dns.Msg, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("TC=%v with %d answers, want one answer", r.Truncated, len(r.Answer))
		}
		if got := strings.Join(r.Answer[0].(*dns.TXT).Txt, ""); got != text {
			t.Errorf("text of %d bytes, want %d", len(got), len(text))
		}
	}
}

func wantUnpackError(t *testing.T, _ *dns.Msg, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "dns: ") {
		t.Errorf("err %v, want an unpack error", err)
	}
}

func TestEscapeKeepsBytes(t *testing.T) {
	text := "a\"b\\c d\x00\xffé" + strings.Repeat("z", 300)
	m := new(dns.Msg)
	m.SetQuestion("hostname.bind.", dns.TypeTXT)
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "hostname.bind.", Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: txtStrings(text)}}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(wire), "a\"b\\c d\x00\xff") {
		t.Errorf("wire form lost bytes of %q", text)
	}
	if got := len(m.Answer[0].(*dns.TXT).Txt); got != 2 {
		t.Errorf("%d character-strings, want 2 (split at 255 bytes)", got)
	}
}

func TestStartTwiceAndShutdownBeforeStart(t *testing.T) {
	d := NewDNS("a")
	if err := d.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown before start: %v", err)
	}
	addr := testutil.Serve(t, d, "")
	if _, err := d.Start(context.Background(), addr); err == nil {
		t.Error("second Start succeeded")
	}
	if _, err := NewDNS("b").Start(context.Background(), addr); err == nil {
		t.Errorf("Start on busy %s succeeded", addr)
	}
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(HTTP("cf-ray", "7bd32409eda7b020-SJC", "SJC"))
	t.Cleanup(srv.Close)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+TracePath, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("cf-ray") != "7bd32409eda7b020-SJC" {
			t.Errorf("%s: status %d, cf-ray %q", method, resp.StatusCode, resp.Header.Get("cf-ray"))
		}
		wantBody := method == http.MethodGet
		if strings.Contains(string(body), "\ncolo=SJC\n") != wantBody {
			t.Errorf("%s: body %q", method, body)
		}
	}
}
