package sim

import (
	"context"
	"errors"
	"sync"
	"time"
)

// LoadOptions drive Load. Zero values take defaults.
type LoadOptions struct {
	Rate     float64       // results per second, over the whole fleet; required
	Duration time.Duration // how long results are generated; required
	// A probe uploads when it holds Batch results (500) or its oldest
	// result is Flush old (5 s), as an agent does.
	Batch   int
	Flush   time.Duration
	Workers int // parallel uploads: 8
}

// loadTick is how often the generator catches up with the rate.
const loadTick = 100 * time.Millisecond

// LoadReport is what a load run achieved.
type LoadReport struct {
	Generated int
	Elapsed   time.Duration // from the first result to the last upload's answer
	*Stats
}

// StoredPerSecond is the rate the aggregator stored results at.
func (r LoadReport) StoredPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Stored) / r.Elapsed.Seconds()
}

// Load generates o.Rate results a second for o.Duration, round robin over
// the fleet, and uploads them in batches bounded in count and age, each
// probe with its own token. When the aggregator is slower than the rate,
// the uploads queue and generation waits for them, so the report shows
// what the aggregator sustained. It stops early when ctx ends.
func (f *Fleet) Load(ctx context.Context, o LoadOptions) (LoadReport, error) {
	if !(o.Rate > 0) || o.Duration <= 0 {
		return LoadReport{}, errors.New("load: give a rate above 0 results/s and a duration above 0")
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Flush <= 0 {
		o.Flush = 5 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	rep := LoadReport{Stats: &Stats{}}
	queue := make(chan Batch, 2*o.Workers)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range queue {
				f.post(ctx, &b, rep.Stats)
			}
		}()
	}

	n := len(f.m.probes)
	pending := make([]Batch, n)
	oldest := make([]time.Time, n)
	send := func(i int) bool {
		b := pending[i]
		pending[i] = Batch{Probe: i}
		select {
		case queue <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for i := range pending {
		pending[i].Probe = i
	}

	start := time.Now()
	end := start.Add(o.Duration)
	next := 0
	tick := time.NewTicker(loadTick)
	defer tick.Stop()
generate:
	for {
		select {
		case <-ctx.Done():
			break generate
		case <-tick.C:
		}
		now := time.Now()
		if now.After(end) {
			now = end
		}
		want := int(o.Rate * now.Sub(start).Seconds())
		for ; rep.Generated < want; rep.Generated++ {
			i := next
			next = (next + 1) % n
			// Scheduled times, not the clock: ids stay unique per probe.
			t := start.Add(time.Duration(float64(rep.Generated) / o.Rate * float64(time.Second)))
			if len(pending[i].Records) == 0 {
				oldest[i] = now
			}
			pending[i].Records = append(pending[i].Records, f.m.Measure(i, t))
			if len(pending[i].Records) >= o.Batch && !send(i) {
				break generate
			}
		}
		for i := range pending {
			if len(pending[i].Records) > 0 && now.Sub(oldest[i]) >= o.Flush && !send(i) {
				break generate
			}
		}
		if !now.Before(end) {
			break generate
		}
	}
	for i := range pending {
		if len(pending[i].Records) > 0 && !send(i) {
			break
		}
	}
	close(queue)
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep, nil
}
