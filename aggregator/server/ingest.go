package server

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// batchError is an upload a retry cannot fix: its status is 400, 413 or
// 415.
type batchError struct {
	code int
	msg  string
}

func (e *batchError) Error() string { return e.msg }

func badBatch(format string, a ...any) error {
	return &batchError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// readError classifies a failure to read the body: past a size limit is
// 413, anything else (a broken gzip stream, a cut connection) 400.
func readError(err error) *batchError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &batchError{code: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("body larger than max_body_bytes (%d bytes, also after gzip decoding): send smaller batches", mbe.Limit)}
	}
	return &batchError{code: http.StatusBadRequest, msg: fmt.Sprintf("reading the body: %v", err)}
}

// readBatch decodes and validates an upload, dropping repeated ids (counted
// in dups). A batch with an invalid record is refused whole, so that an
// upload is stored all or nothing. An admin upload (an import) keeps each
// record's probe, so it must name one.
func (s *Server) readBatch(w http.ResponseWriter, r *http.Request) (rs []result.Record, dups int, err error) {
	if err := checkContentType(r); err != nil {
		return nil, 0, err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, 0, err
	}
	if rs, err = result.DecodeJSON(body, s.cfg.MaxBatch); err != nil {
		if errors.Is(err, result.ErrTooMany) {
			return nil, 0, &batchError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("more than max_batch (%d) records: send smaller batches", s.cfg.MaxBatch)}
		}
		return nil, 0, badBatch("%v; nothing was stored", err)
	}
	now, admin := s.now(), isAdmin(r.Context())
	seen := make(map[string]struct{}, len(rs))
	kept := rs[:0]
	for i := range rs {
		err := rs[i].Validate(now, s.cfg.MaxFuture.D())
		if err == nil && admin && rs[i].Probe == "" {
			err = errors.New("probe: empty: an upload with the admin token stores each record under its own probe, so give one (such as atlas-6001)")
		}
		if err != nil {
			// rs goes back so that its records are counted as rejected.
			return rs, 0, badBatch("record %d (id %q): %v; nothing was stored", i, clip(rs[i].ID), err)
		}
		if _, ok := seen[rs[i].ID]; ok {
			dups++
			continue
		}
		seen[rs[i].ID] = struct{}{}
		kept = append(kept, rs[i])
	}
	return kept, dups, nil
}

// checkContentType refuses a body that says it is neither JSON nor NDJSON,
// which only a misconfigured client sends. None at all is taken as JSON,
// as curl -d sends it.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == api.ContentJSON || mt == api.ContentNDJSON) {
		return nil
	}
	return &batchError{code: http.StatusUnsupportedMediaType,
		msg: fmt.Sprintf("Content-Type %q: send %s (an array of records) or %s (a record per line)", clip(ct), api.ContentJSON, api.ContentNDJSON)}
}

// Pools for readBody: an upload's buffer and gzip state (a 32 KiB window
// and tables) are reused rather than allocated per request.
var (
	bodyBufs   = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipReads  = sync.Pool{New: func() any { return new(gzip.Reader) }}
	bufioReads = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
)

// readBody reads the whole upload, gunzipped when so encoded, as one
// string that the decoded records' fields then share. The body is limited
// before and after gzip decoding, so that a small gzip bomb cannot expand
// into memory.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (string, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		// A bufio.Reader is a flate.Reader, which gzip reads from directly.
		br := bufioReads.Get().(*bufio.Reader)
		br.Reset(body)
		gz := gzipReads.Get().(*gzip.Reader)
		defer func() {
			br.Reset(nil)
			bufioReads.Put(br)
			gzipReads.Put(gz)
		}()
		if err := gz.Reset(br); err != nil {
			if e := readError(err); e.code == http.StatusRequestEntityTooLarge {
				return "", e
			}
			return "", badBatch("Content-Encoding is gzip but the body is not gzip: %v", err)
		}
		body = http.MaxBytesReader(w, io.NopCloser(gz), s.cfg.MaxBodyBytes)
	default:
		return "", &batchError{code: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Encoding %q: send the body plain or gzip", enc)}
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer bodyBufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(body); err != nil {
		return "", readError(err)
	}
	return buf.String(), nil
}

// clip shortens a client-sent string for an error message.
func clip(s string) string {
	if len(s) <= result.MaxIDBytes {
		return s
	}
	return s[:result.MaxIDBytes] + "..."
}

// ingest is POST /api/v1/results. It answers 200 only once the batch is
// durable; 4xx for a batch no retry can fix; 503 when nothing was stored
// and a retry may succeed. With a probe's token the records are stored
// under that probe and placed where it is; with the admin token (imports)
// each record keeps its own probe and place.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.m.ingestBatches.WithLabelValues(fmt.Sprint(sw.code)).Inc() }()
	w = sw
	p, _ := ProbeFromContext(r.Context())
	admin, who := isAdmin(r.Context()), p.ID
	if admin {
		who = "admin"
	}

	rs, dups, err := s.readBatch(w, r)
	if err != nil {
		var be *batchError
		if !errors.As(err, &be) {
			be = readError(err)
		}
		s.m.ingestResults.WithLabelValues(outcomeRejected).Add(float64(len(rs)))
		s.log.Info("upload refused", "probe", who, "code", be.code, "err", be.msg)
		httpx.WriteError(w, be.code, be.msg)
		return
	}
	addr := clientAddr(r)
	if !admin {
		s.place(rs, p, addr)
	}
	var touch *store.Touch
	if !admin {
		touch = &store.Touch{ID: p.ID, Seen: s.now().UTC()}
		if addr.IsValid() {
			touch.Addr = addr.String()
		}
	}
	stored, err := s.commits.append(r.Context(), rs, touch)
	if err != nil {
		httpx.StoreError(s.log, w, r, "storing results", err)
		return
	}
	s.m.ingestResults.WithLabelValues(outcomeStored).Add(float64(stored))
	s.m.ingestResults.WithLabelValues(outcomeDuplicate).Add(float64(len(rs) - stored + dups))
	httpx.WriteJSON(w, http.StatusOK, api.IngestResponse{Accepted: len(rs) + dups, Stored: stored, Duplicate: len(rs) - stored + dups})
}

// clientAddr is the address the request came from. Proxy headers are not
// trusted: a probe could claim any place with them.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// place stamps each record with the probe and where it measured from: the
// probe's registered location wins, then the record's own, then GeoIP of
// the address it uploaded from. Country and ASN come from the registration,
// else GeoIP, else the record.
func (s *Server) place(rs []result.Record, p api.Probe, addr netip.Addr) {
	var loc geo.Location
	if s.geo != nil {
		var err error
		if loc, err = s.geo.Lookup(addr); err != nil {
			s.log.Warn("GeoIP lookup failed", "probe", p.ID, "err", err)
		}
	}
	registered := p.Lat != nil && p.Lon != nil
	if registered {
		loc.Lat, loc.Lon = p.Lat, p.Lon
	}
	country, asn := cmp.Or(p.Country, loc.Country), cmp.Or(p.ASN, loc.ASN)
	for i := range rs {
		r := &rs[i]
		r.Probe = p.ID
		if registered || (r.Lat == nil && loc.Lat != nil && loc.Lon != nil) {
			r.Lat, r.Lon = loc.Lat, loc.Lon
		}
		if country != "" {
			r.Country = country
		}
		if asn != 0 {
			r.ASN = asn
		}
	}
}
