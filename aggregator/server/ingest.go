package server

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// Limits of one record's fields.
const (
	maxIDLen     = 128
	maxProbeLen  = 128
	maxTargetLen = 1024
)

// batchError is an upload a retry cannot fix: its status is 400 or 413.
type batchError struct {
	code int
	msg  string
}

func (e *batchError) Error() string { return e.msg }

func badBatch(format string, a ...any) error {
	return &batchError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// decodeBatch reads an upload: a JSON array of records, or NDJSON (one
// record per line), told apart by the first non-space byte. Unknown fields
// are accepted so that a newer probe can upload to an older aggregator;
// type errors are not. More than max records is an error.
func decodeBatch(r io.Reader, max int) ([]result.Record, error) {
	br := bufio.NewReader(r)
	first, err := firstByte(br)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(br)
	var rs []result.Record
	// next decodes one record; false at the end of the NDJSON stream.
	next := func() (bool, error) {
		var rec result.Record
		err := dec.Decode(&rec)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, recordError(len(rs), err)
		}
		if len(rs) == max {
			return false, &batchError{code: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("more than max_batch (%d) records: send smaller batches", max)}
		}
		rs = append(rs, rec)
		return true, nil
	}
	switch first {
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, recordError(0, err)
		}
		for dec.More() {
			more, err := next()
			if err != nil {
				return nil, err
			}
			if !more { // EOF after a comma
				return nil, recordError(len(rs), io.ErrUnexpectedEOF)
			}
		}
		if _, err := dec.Token(); err != nil { // the closing ]
			return nil, recordError(len(rs), err)
		}
		switch _, err := dec.Token(); {
		case err == nil:
			return nil, badBatch("data after the closing ] of the array: send one array")
		case err != io.EOF:
			return nil, recordError(len(rs), err)
		}
	case '{':
		for {
			more, err := next()
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
		}
	default:
		return nil, badBatch("body starts with %q: send a JSON array of records or NDJSON (one record object per line)", first)
	}
	if len(rs) == 0 {
		return nil, badBatch("no records in the body")
	}
	return rs, nil
}

// firstByte returns the first byte that is not JSON white space, leaving it
// unread.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return 0, badBatch("empty body: send a JSON array of records or NDJSON")
		}
		if err != nil {
			return 0, readError(err)
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		_ = br.UnreadByte() // cannot fail right after ReadByte
		return b, nil
	}
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

// recordError describes a failure to decode record i.
func recordError(i int, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se), errors.As(err, &te):
		return badBatch("record %d: bad JSON: %v", i, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badBatch("record %d: the body ends in the middle of a JSON value", i)
	}
	return readError(err)
}

// validate checks one record; the error names the field.
func validate(r *result.Record, now time.Time, maxFuture time.Duration) error {
	switch {
	case r.ID == "":
		return errors.New("id: empty: give every record a unique id (a UUIDv7)")
	case len(r.ID) > maxIDLen:
		return fmt.Errorf("id: %d bytes, more than %d", len(r.ID), maxIDLen)
	case !utf8.ValidString(r.ID):
		return errors.New("id: not valid UTF-8")
	case r.Time.IsZero():
		return errors.New("time: missing: give the measurement time in RFC 3339")
	case r.Time.After(now.Add(maxFuture)):
		return fmt.Errorf("time: %s is %s in the future (more than max_future %s): fix the probe's clock (NTP)",
			r.Time.Format(time.RFC3339), r.Time.Sub(now).Round(time.Second), maxFuture)
	case r.Target == "":
		return errors.New("target: empty")
	case len(r.Target) > maxTargetLen:
		return fmt.Errorf("target: %d bytes, more than %d", len(r.Target), maxTargetLen)
	case r.AF != 0 && r.AF != 4 && r.AF != 6:
		return fmt.Errorf("af: %d: use 0, 4 or 6", r.AF)
	case math.IsNaN(r.RTTMs) || math.IsInf(r.RTTMs, 0) || r.RTTMs < 0:
		return fmt.Errorf("rtt_ms: %v: must be a finite number >= 0", r.RTTMs)
	case (r.Lat == nil) != (r.Lon == nil):
		return errors.New("lat, lon: give both or neither")
	case r.Lat != nil && !(*r.Lat >= -90 && *r.Lat <= 90):
		return fmt.Errorf("lat: %v out of range -90 to 90", *r.Lat)
	case r.Lon != nil && !(*r.Lon >= -180 && *r.Lon <= 180):
		return fmt.Errorf("lon: %v out of range -180 to 180", *r.Lon)
	}
	switch r.Method {
	case result.MethodDNS, result.MethodHTTP, result.MethodICMP, result.MethodTCP:
	default:
		return fmt.Errorf("method: unknown %q: use dns, http, icmp or tcp", r.Method)
	}
	if r.ErrorKind != result.KindNone && !knownKind(r.ErrorKind) {
		return fmt.Errorf("error_kind: unknown %q", r.ErrorKind)
	}
	return nil
}

func knownKind(k result.ErrorKind) bool {
	for _, v := range result.Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// readBatch decodes and validates an upload, dropping repeated ids (counted
// in dups). A batch with an invalid record is refused whole, so that an
// upload is stored all or nothing. An admin upload (an import) keeps each
// record's probe, so it must name one.
func (s *Server) readBatch(w http.ResponseWriter, r *http.Request) (rs []result.Record, dups int, err error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, 0, err
	}
	if rs, err = decodeFast(body, s.cfg.MaxBatch); err != nil {
		if rs, err = decodeBatch(strings.NewReader(body), s.cfg.MaxBatch); err != nil {
			return nil, 0, err
		}
	}
	now, admin := s.now(), isAdmin(r.Context())
	seen := make(map[string]struct{}, len(rs))
	kept := rs[:0]
	for i := range rs {
		err := validate(&rs[i], now, s.cfg.MaxFuture.D())
		if err == nil && admin {
			err = validateProbe(rs[i].Probe)
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

// validateProbe checks the probe field of an admin upload's record.
func validateProbe(p string) error {
	switch {
	case p == "":
		return errors.New("probe: empty: an upload with the admin token stores each record under its own probe, so give one (such as atlas-6001)")
	case len(p) > maxProbeLen:
		return fmt.Errorf("probe: %d bytes, more than %d", len(p), maxProbeLen)
	case !utf8.ValidString(p):
		return errors.New("probe: not valid UTF-8")
	}
	return nil
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
	if len(s) <= maxIDLen {
		return s
	}
	return s[:maxIDLen] + "..."
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
