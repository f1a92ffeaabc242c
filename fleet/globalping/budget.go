package globalping

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// window is how long Globalping counts the tests it allows: an hour from
// the first test counted.
const window = time.Hour

// Budget is the state of a client's hourly budget of tests.
type Budget struct {
	// Limit is the tests an hour allows; Left, how many are left of it.
	Limit, Left int
	// Reset is when the hour ends and the budget is whole again; zero
	// when no test has been counted.
	Reset time.Time
}

// budget counts the tests a client creates in Globalping's hourly window.
// It starts from the documented limit, and takes Globalping's own count
// (the X-RateLimit-* headers of each creation) whenever it has one, since
// others may spend from the same token or address.
type budget struct {
	now func() time.Time

	mu    sync.Mutex
	limit int
	// spent is what the hour has spent; inflight, what creations not yet
	// answered may spend.
	spent, inflight int
	reset           time.Time
}

// state returns the budget as of now; b.mu is held.
func (b *budget) state() Budget {
	if !b.reset.IsZero() && !b.now().Before(b.reset) {
		b.spent, b.reset = 0, time.Time{}
	}
	return Budget{Limit: b.limit, Left: max(b.limit-b.spent-b.inflight, 0), Reset: b.reset}
}

// take reserves n tests, waiting with sleep, bounded by ctx, for the hour
// to end when fewer are left.
func (b *budget) take(ctx context.Context, n int, sleep func(context.Context, time.Duration) error, log *slog.Logger) error {
	for {
		b.mu.Lock()
		st := b.state()
		if n > st.Limit {
			b.mu.Unlock()
			return fmt.Errorf("the measurement asks for %d tests, more than the %d an hour allows: ask for fewer probes", n, st.Limit)
		}
		if n <= st.Left {
			b.inflight += n
			if b.reset.IsZero() {
				b.reset = b.now().Add(window)
			}
			b.mu.Unlock()
			return nil
		}
		wait := st.Reset.Sub(b.now())
		b.mu.Unlock()
		log.Info("waiting for Globalping's hourly budget of tests", "need", n, "left", st.Left, "limit", st.Limit, "until", st.Reset)
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("stopped waiting for Globalping's hourly budget (%d of %d tests left, %d needed, whole again at %s): %w",
				st.Left, st.Limit, n, st.Reset.UTC().Format(time.RFC3339), err)
		}
	}
}

// settle ends a creation that reserved tests: it spent spent of them.
func (b *budget) settle(reserved, spent int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state()
	b.inflight = max(b.inflight-reserved, 0)
	b.spent += spent
}

// sync takes Globalping's count of its window, from the headers of an
// answer to a creation.
func (b *budget) sync(h http.Header) {
	limit, okL := headerInt(h, "X-RateLimit-Limit")
	left, okR := headerInt(h, "X-RateLimit-Remaining")
	reset, okS := headerInt(h, "X-RateLimit-Reset")
	b.mu.Lock()
	defer b.mu.Unlock()
	if okL && limit > 0 {
		b.limit = limit
	}
	if okR && okS {
		b.spent = max(b.limit-left, 0)
		b.reset = b.now().Add(time.Duration(min(reset, maxReset)) * time.Second)
	}
}

// Budget returns the state of the client's hourly budget of tests.
func (c *Client) Budget() Budget {
	c.budget.mu.Lock()
	defer c.budget.mu.Unlock()
	return c.budget.state()
}

// headerInt reads a header that holds a number that is not negative.
func headerInt(h http.Header, name string) (int, bool) {
	n, err := strconv.Atoi(h.Get(name))
	return n, err == nil && n >= 0
}
