package sim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/probe/result"
)

// Label marks the simulated probes at the aggregator, so that a plan entry
// for the simulated service selects them and no real probe.
const Label = "sim"

// Fleet is the model's probes registered at an aggregator, each with its
// own token, as real probes are.
type Fleet struct {
	c      *Client
	m      *Model
	ids    []string
	tokens []token.Token
}

// Register registers every probe of m at the aggregator, workers at a time,
// placed where the model put it.
func Register(ctx context.Context, c *Client, m *Model, workers int) (*Fleet, error) {
	f := &Fleet{c: c, m: m, ids: make([]string, len(m.probes)), tokens: make([]token.Token, len(m.probes))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range m.probes {
		p := &m.probes[i]
		g.Go(func() error {
			lat, lon := p.Lat, p.Lon
			pc, err := c.RegisterProbe(gctx, api.ProbeRegistration{Name: p.Name, Lat: &lat, Lon: &lon,
				Labels: map[string]string{Label: "true", "asn": strconv.FormatUint(uint64(p.ASN), 10)}})
			if err != nil {
				return fmt.Errorf("registering simulated probe %s: %w", p.Name, err)
			}
			f.ids[i], f.tokens[i] = pc.ID, token.Parse(pc.Token)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return f, nil
}

// Model is the fleet's model.
func (f *Fleet) Model() *Model { return f.m }

// Client is the fleet's client.
func (f *Fleet) Client() *Client { return f.c }

// ID returns the aggregator's id of probe i.
func (f *Fleet) ID(i int) string { return f.ids[i] }

// Batch is one upload: records of one probe (an index into Model.Probes).
type Batch struct {
	Probe   int
	Records []result.Record
}

// Stats count uploads. Safe for concurrent use.
type Stats struct {
	mu        sync.Mutex
	Batches   int
	Failed    int
	Results   int // records sent in successful batches
	Stored    int
	Duplicate int
	FirstErr  error
	latencies []time.Duration // of successful batches, capped
}

// maxLatencies caps the latencies kept for percentiles.
const maxLatencies = 100_000

func (s *Stats) add(b *Batch, ir api.IngestResponse, took time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Batches++
	if err != nil {
		s.Failed++
		if s.FirstErr == nil {
			s.FirstErr = err
		}
		return
	}
	s.Results += len(b.Records)
	s.Stored += ir.Stored
	s.Duplicate += ir.Duplicate
	if len(s.latencies) < maxLatencies {
		s.latencies = append(s.latencies, took)
	}
}

// Latency returns the q-quantile (0..1) of successful uploads' latencies;
// 0 when there were none.
func (s *Stats) Latency(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l[min(int(q*float64(len(l))), len(l)-1)]
}

// post uploads one batch with its probe's token, counting it in st.
func (f *Fleet) post(ctx context.Context, b *Batch, st *Stats) {
	start := time.Now()
	ir, err := f.c.Upload(ctx, f.tokens[b.Probe], b.Records)
	if err != nil {
		err = fmt.Errorf("uploading %d results of simulated probe %s: %w", len(b.Records), f.m.probes[b.Probe].Name, err)
	}
	st.add(b, ir, time.Since(start), err)
}

// Upload posts batches, workers at a time, and counts them in st. A failed
// batch is counted, not retried: the simulator measures the aggregator.
func (f *Fleet) Upload(ctx context.Context, batches []Batch, workers int, st *Stats) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(workers, 1))
	for i := range batches {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.post(ctx, &batches[i], st)
		}()
	}
	wg.Wait()
}
