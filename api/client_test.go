package api

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/api/token"
)

const secret = "client-test-token-0123456789"

// server answers as an aggregator does: Error bodies for refusals,
// JSON for the rest, and it checks the token and the body's encoding.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(status int, msg string) {
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(Error{Error: msg})
		}
		if r.Header.Get("Authorization") != "Bearer "+secret {
			fail(http.StatusUnauthorized, "missing or wrong token")
			return
		}
		switch r.URL.Path {
		case Prefix + "/echo":
			if r.Header.Get("User-Agent") != "client-test" {
				fail(http.StatusBadRequest, "no user agent")
				return
			}
			var v map[string]string
			if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
				fail(http.StatusBadRequest, "body: "+err.Error())
				return
			}
			v["q"] = r.URL.Query().Get("q")
			json.NewEncoder(w).Encode(v)
		case Prefix + "/results":
			zr, err := gzip.NewReader(r.Body)
			if err != nil || r.Header.Get("Content-Type") != ContentNDJSON {
				fail(http.StatusUnsupportedMediaType, "want gzip NDJSON")
				return
			}
			b, _ := io.ReadAll(zr)
			json.NewEncoder(w).Encode(IngestResponse{Stored: strings.Count(string(b), "\n")})
		case Prefix + "/busy":
			fail(http.StatusTooManyRequests, "slow down")
		case Prefix + "/plain":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "  proxy says no \n")
		case Prefix + "/garbage":
			io.WriteString(w, "not json")
		default:
			fail(http.StatusNotFound, "no such route")
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientJSON(t *testing.T) {
	srv := server(t)
	c, err := NewClient(srv.URL+"/", token.Parse(secret), srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	c.UserAgent = "client-test"
	ctx := context.Background()
	var got map[string]string
	if err := c.JSON(ctx, http.MethodPost, Prefix+"/echo", map[string][]string{"q": {"x"}}, map[string]string{"a": "b"}, &got); err != nil {
		t.Fatal(err)
	}
	if got["a"] != "b" || got["q"] != "x" {
		t.Errorf("echo: %v", got)
	}
	if c.Base() != srv.URL || !strings.HasPrefix(srv.URL, "http://"+c.Host()) {
		t.Errorf("base %q, host %q for %q", c.Base(), c.Host(), srv.URL)
	}
}

func TestClientNDJSONGzip(t *testing.T) {
	srv := server(t)
	c, _ := NewClient(srv.URL, token.Parse(secret), srv.Client())
	var b strings.Builder
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, "{}\n{}\n{}\n")
	zw.Close()
	ir, err := c.PostEncodedResults(context.Background(), []byte(b.String()))
	if err != nil || ir.Stored != 3 {
		t.Errorf("stored %d, err %v; want 3, nil", ir.Stored, err)
	}
}

func TestClientErrors(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	good, _ := NewClient(srv.URL, token.Parse(secret), srv.Client())
	bad, _ := NewClient(srv.URL, token.Parse("wrong-"+secret), srv.Client())

	var se *StatusError
	err := bad.GetJSON(ctx, Prefix+"/echo", nil, nil)
	if !errors.As(err, &se) || !se.Auth() || se.Retryable() || se.Message != "missing or wrong token" || strings.Contains(err.Error(), secret) {
		t.Errorf("wrong token: %v", err)
	}
	err = good.GetJSON(ctx, Prefix+"/busy", nil, nil)
	if !errors.As(err, &se) || !se.Throttled() || !Retryable(err) || !strings.Contains(err.Error(), "429 Too Many Requests: slow down") {
		t.Errorf("throttled: %v", err)
	}
	err = good.GetJSON(ctx, Prefix+"/nowhere", nil, nil)
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Retryable() || se.Rejected() {
		t.Errorf("not found: %v", err)
	}
	err = good.GetJSON(ctx, Prefix+"/plain", nil, nil)
	if !errors.As(err, &se) || se.Message != "proxy says no" || !se.Retryable() {
		t.Errorf("plain 502: %v", err)
	}
	var v map[string]any
	var ae *AnswerError
	if err := good.GetJSON(ctx, Prefix+"/garbage", nil, &v); !errors.As(err, &ae) || Retryable(err) {
		t.Errorf("garbage: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	c, _ := NewClient(dead, token.Parse(secret), nil)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ne *NetError
	err = c.GetJSON(cctx, Prefix+"/echo", nil, nil)
	if !errors.As(err, &ne) || !Retryable(err) || strings.Contains(err.Error(), dead) {
		t.Errorf("closed port: %v", err)
	}

	for _, u := range []string{"", "ftp://x", "127.0.0.1:8080", "http://"} {
		if _, err := NewClient(u, token.Token{}, nil); !errors.Is(err, ErrBadURL) {
			t.Errorf("NewClient(%q) = %v, want ErrBadURL", u, err)
		}
	}
}
