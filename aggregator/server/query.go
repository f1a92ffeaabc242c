package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// Default query windows: results are dense, notes and events sparse.
const (
	defaultResultsWindow  = 15 * time.Minute
	defaultTimelineWindow = 24 * time.Hour
	maxAnnotationText     = 4096
)

// recordWriter streams records in one output format.
type recordWriter interface {
	Write(*result.Record) error
	Close() error
}

// CSVColumns are the header of the CSV export: the record's CSV columns
// (result.CSVHeader) that the export documents, in its order. They are
// part of the API: add columns at the end only.
var CSVColumns = []string{
	"id", "time", "probe", "target", "method", "af", "addr", "identity", "site", "rtt_ms",
	"error", "error_kind", "lat", "lon", "country", "asn", "suspect",
	"dns_qname", "dns_qclass", "dns_qtype", "dns_rcode", "dns_nsid", "dns_tcp", "dns_size",
	"http_status", "http_proto", "http_total_ms",
	"ping_sent", "ping_received", "ping_loss", "ping_min_ms", "ping_avg_ms", "ping_max_ms", "source",
}

// Output formats of GET /api/v1/results, all written by the record's own
// encoders.
var formats = map[string]struct {
	contentType string
	new         func(io.Writer) recordWriter
}{
	"json":   {"application/json", func(w io.Writer) recordWriter { return result.NewJSONArrayWriter(w) }},
	"ndjson": {"application/x-ndjson", func(w io.Writer) recordWriter { return closeless{result.NewNDJSONWriter(w)} }},
	"csv": {"text/csv; charset=utf-8", func(w io.Writer) recordWriter {
		cw, _ := result.NewCSVWriterOf(w, CSVColumns) // TestCSVColumns: every name is the record's
		return csvWriter{cw}
	}},
}

type closeless struct{ *result.NDJSONWriter }

func (closeless) Close() error { return nil }

type csvWriter struct{ *result.CSVWriter }

func (c csvWriter) Close() error { return c.Flush() }

// sentWriter notes whether anything reached the client, to know whether an
// error can still be answered with a status.
type sentWriter struct {
	w    io.Writer
	sent bool
}

func (s *sentWriter) Write(b []byte) (int, error) {
	s.sent = true
	return s.w.Write(b)
}

// queryResults is GET /api/v1/results, streamed so that memory stays flat
// whatever the window.
func (s *Server) queryResults(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := ParseWindow(q, s.now(), defaultResultsWindow)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := q.Get("format")
	if name == "" {
		name = "json"
	}
	f, ok := formats[name]
	if !ok {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("bad format %q: use json, ndjson or csv", name))
		return
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("bad limit %q: use a whole number >= 0 (0: no limit)", v))
			return
		}
	}
	sq := store.Query{Target: q.Get("target"), Probe: q.Get("probe"), From: from, To: to, Limit: limit}

	w.Header().Set("Content-Type", f.contentType)
	sent := &sentWriter{w: w}
	bw := bufio.NewWriterSize(sent, 32<<10)
	out := f.new(bw)
	err = s.st.Scan(r.Context(), sq, out.Write)
	if err == nil {
		err = out.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		return
	}
	if !sent.sent {
		w.Header().Del("Content-Type")
		httpx.StoreError(s.log, w, r, "reading results", err)
		return
	}
	// Part of the answer is out: cut the connection so that the client sees
	// a truncated body rather than a short answer that looks complete.
	s.log.Warn("results query failed while streaming", "err", err)
	panic(http.ErrAbortHandler)
}

func (s *Server) addAnnotation(w http.ResponseWriter, r *http.Request) {
	var a api.Annotation
	if !decodeBody(w, r, &a) {
		return
	}
	a.Text = strings.TrimSpace(a.Text)
	switch {
	case a.Text == "":
		httpx.WriteError(w, http.StatusBadRequest, "text: empty: say what happened")
		return
	case len(a.Text) > maxAnnotationText:
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("text: %d bytes, more than %d", len(a.Text), maxAnnotationText))
		return
	case strings.IndexFunc(a.Target, unicode.IsControl) >= 0 || len(a.Target) > result.MaxTargetBytes:
		httpx.WriteError(w, http.StatusBadRequest, "target: too long or contains control characters")
		return
	}
	if a.Time.IsZero() {
		a.Time = s.now()
	}
	a.Time = a.Time.UTC()
	a.ID = result.NewID()
	if err := s.st.AddAnnotation(r.Context(), a); err != nil {
		httpx.StoreError(s.log, w, r, "storing the annotation", err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, a)
}

func (s *Server) annotations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := ParseWindow(q, s.now(), defaultTimelineWindow)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	as, err := s.st.Annotations(r.Context(), q.Get("target"), from, to)
	if err != nil {
		httpx.StoreError(s.log, w, r, "reading annotations", err)
		return
	}
	if as == nil {
		as = []api.Annotation{}
	}
	httpx.WriteJSON(w, http.StatusOK, as)
}

// events is GET /api/v1/events: BGP events of the prefixes the plan lists
// for the target.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target := q.Get("target")
	if target == "" {
		httpx.WriteError(w, http.StatusBadRequest, "missing target: give the plan entry's name, such as ?target=k.root-servers.net")
		return
	}
	from, to, err := ParseWindow(q, s.now(), defaultTimelineWindow)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := s.st.Plan(r.Context())
	if err != nil {
		httpx.StoreError(s.log, w, r, "reading the plan", err)
		return
	}
	t, ok := p.Lookup(target)
	if !ok {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("target %q is no plan entry's name, nor the address of exactly one: see GET /api/v1/targets", clip(target)))
		return
	}
	es := []api.Event{}
	if len(t.Prefixes) > 0 {
		got, err := s.st.Events(r.Context(), t.Prefixes, from, to)
		if err != nil {
			httpx.StoreError(s.log, w, r, "reading events", err)
			return
		}
		es = append(es, got...)
	}
	httpx.WriteJSON(w, http.StatusOK, es)
}
