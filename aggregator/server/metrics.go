package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/catchmap/catchmap/aggregator/httpx"
	"github.com/prometheus/client_golang/prometheus"
)

// Ingest outcomes of one record.
const (
	outcomeStored    = "stored"
	outcomeDuplicate = "duplicate"
	outcomeRejected  = "rejected"
)

type metrics struct {
	ingestResults *prometheus.CounterVec
	ingestBatches *prometheus.CounterVec
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	retained      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ingestResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catchmap_ingest_results_total",
			Help: "Result records uploaded by probes, by outcome: stored, duplicate (id already stored) or rejected (batch refused).",
		}, []string{"outcome"}),
		ingestBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catchmap_ingest_batches_total",
			Help: "Result uploads, by HTTP status code answered.",
		}, []string{"code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catchmap_http_requests_total",
			Help: "HTTP requests, by route pattern (\"unmatched\" for none) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "catchmap_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8), // 1ms to ~16s
		}, []string{"route"}),
		retained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "catchmap_retention_deleted_results_total",
			Help: "Results deleted because they were older than retention_days.",
		}),
	}
	for _, c := range []prometheus.Collector{m.ingestResults, m.ingestBatches, m.requests, m.duration, m.retained} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{outcomeStored, outcomeDuplicate, outcomeRejected} {
		m.ingestResults.WithLabelValues(o)
	}
	return m, nil
}

// statusWriter remembers the status code for metrics. Unwrap lets
// http.ResponseController reach the real writer (Flush for streaming).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts and times every request by the pattern the mux chose,
// which the mux sets on the request it is given.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// route serves r on the mux, answering for unknown paths and methods with
// JSON errors like every other route rather than the mux's plain text.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if h, pattern := s.mux.Handler(r); pattern == "" {
		h.ServeHTTP(&jsonErrorWriter{ResponseWriter: w}, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// jsonErrorWriter turns an error answer written with http.Error into an
// api.Error, keeping its status and headers (Allow for a 405).
type jsonErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (j *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	j.replaced = true
	j.Header().Del("Content-Length")
	msg := http.StatusText(code)
	if code == http.StatusNotFound {
		msg = "no such route: see openapi.yaml for the API"
	} else if code == http.StatusMethodNotAllowed {
		msg = "method not allowed here; allowed: " + j.Header().Get("Allow")
	}
	httpx.WriteError(j.ResponseWriter, code, msg)
}

func (j *jsonErrorWriter) Write(b []byte) (int, error) {
	if j.replaced {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}
