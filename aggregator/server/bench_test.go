package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
)

// BenchmarkIngest uploads 1000-record NDJSON batches through the whole
// handler into a real SQLite file, from one sender and from four at once
// (group commit); records/s is the figure to watch. bench/ingest.sh runs
// the same over HTTP with gzip, beside the raw insert rate.
func BenchmarkIngest(b *testing.B) {
	for _, senders := range []int{1, 4} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			log := slog.New(slog.DiscardHandler)
			st, err := sqlite.Open(b.Context(), b.TempDir()+"/bench.db", log)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			s, err := New(log, prometheus.NewRegistry(), st)
			if err != nil {
				b.Fatal(err)
			}
			p := api.Probe{ID: "bench", Name: "bench", Created: time.Now()}
			if err := st.CreateProbe(b.Context(), p, []byte("bench-token-hash")); err != nil {
				b.Fatal(err)
			}
			bodies := newBodyMaker(1000)
			upload := func() {
				req := httptest.NewRequestWithContext(b.Context(), "POST", "/api/v1/results", bytes.NewReader(bodies.next()))
				req = req.WithContext(withProbe(req.Context(), p))
				w := httptest.NewRecorder()
				s.ingest(w, req)
				if w.Code != http.StatusOK {
					b.Errorf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportAllocs()
			if senders == 1 {
				for b.Loop() {
					upload()
				}
			} else {
				b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						upload()
					}
				})
			}
			b.ReportMetric(float64(b.N*bodies.batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// bodyMaker makes NDJSON uploads with fresh ids and times cheaply: it
// copies one encoded batch and writes a counter into each record's id and
// time, so that the benchmark times the aggregator, not the encoding, and
// times grow as a probe's do (repeated times would scatter index writes).
type bodyMaker struct {
	batch  int
	t0     time.Time
	tmpl   []byte
	id, at []int // offsets of each id's 12 counter digits and of its time
	n      atomic.Int64
}

const (
	idPrefix   = "0196f0c2-7a51-7c1e-9a0b-"
	timeLayout = "2006-01-02T15:04:05.000000000Z" // RFC 3339, fixed width
)

func newBodyMaker(batch int) *bodyMaker {
	m := &bodyMaker{batch: batch, t0: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	rs := records(batch, m.t0)
	for i := range rs {
		rs[i].ID = idPrefix + "000000000000"
		rs[i].Time = m.t0.Add(time.Nanosecond) // nine digits of fraction: timeLayout's width
	}
	m.tmpl = ndjson(rs)
	for i := 0; ; {
		j := bytes.Index(m.tmpl[i:], []byte(idPrefix))
		if j < 0 {
			break
		}
		i += j + len(idPrefix)
		m.id = append(m.id, i)
		m.at = append(m.at, i+bytes.Index(m.tmpl[i:], []byte(`"time":"`))+len(`"time":"`))
	}
	return m
}

func (m *bodyMaker) next() []byte {
	body := bytes.Clone(m.tmpl)
	base := m.n.Add(int64(len(m.id))) - int64(len(m.id))
	var buf []byte
	for k := range m.id {
		n := base + int64(k)
		buf = fmt.Appendf(buf[:0], "%012d", n)
		copy(body[m.id[k]:], buf)
		buf = m.t0.Add(time.Duration(n)*time.Millisecond).AppendFormat(buf[:0], timeLayout)
		copy(body[m.at[k]:], buf)
	}
	return body
}
