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
	// reset ends the hour; known says Globalping gave it, rather than the
	// client guessing it from its own first test.
	reset time.Time
	known bool
	// settled is closed, and replaced, when a creation ends.
	settled chan struct{}
}

// sameWindow is how far apart two ends of Globalping's hour may be and
// still be the same hour: its resets come in whole seconds, from answers
// that take a while, and the next hour ends an hour later.
const sameWindow = time.Minute

// state returns the budget as of now; b.mu is held.
func (b *budget) state() Budget {
	if !b.reset.IsZero() && !b.now().Before(b.reset) {
		b.spent, b.reset, b.known = 0, time.Time{}, false
	}
	return Budget{Limit: b.limit, Left: max(b.limit-b.spent-b.inflight, 0), Reset: b.reset}
}

// take reserves n tests. When fewer are left it waits, bounded by ctx:
// for creations under way to end when they hold what is missing, else
// with sleep for the hour to end.
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
			b.open()
			b.mu.Unlock()
			return nil
		}
		if n <= b.limit-b.spent {
			settled := b.settledChan()
			b.mu.Unlock()
			select {
			case <-settled:
				continue
			case <-ctx.Done():
				return fmt.Errorf("stopped waiting for other Globalping measurements to be created: %w", context.Cause(ctx))
			}
		}
		wait := st.Reset.Sub(b.now())
		b.mu.Unlock()
		log.Info("waiting for Globalping's hourly budget of tests", "need", n, "left", st.Left, "limit", st.Limit, "until", st.Reset)
		if err := sleep(ctx, max(wait, 0)); err != nil {
			return fmt.Errorf("stopped waiting for Globalping's hourly budget (%d of %d tests left, %d needed, whole again at %s): %w",
				st.Left, st.Limit, n, st.Reset.UTC().Format(time.RFC3339), err)
		}
	}
}

// open starts the client's guess of the hour, when none is running; b.mu
// is held.
func (b *budget) open() {
	if b.reset.IsZero() {
		b.reset, b.known = b.now().Add(window), false
	}
}

// settledChan returns the channel the next settle closes; b.mu is held.
func (b *budget) settledChan() chan struct{} {
	if b.settled == nil {
		b.settled = make(chan struct{})
	}
	return b.settled
}

// settle ends a creation that reserved tests: it spent spent of them.
func (b *budget) settle(reserved, spent int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state()
	b.inflight = max(b.inflight-reserved, 0)
	if spent > 0 {
		b.spent += spent
		b.open()
	}
	if b.settled != nil && reserved > 0 {
		close(b.settled)
		b.settled = nil
	}
}

// sync takes Globalping's count of its hour, from the headers of an
// answer to a creation. Answers to concurrent creations may come in
// another order than Globalping counted them, so within one hour the
// count only grows; an hour that ends later than the client's is a new
// one, and an hour that ends earlier one the client only guessed at.
func (b *budget) sync(h http.Header) {
	limit, okL := headerInt(h, "X-RateLimit-Limit")
	left, okR := headerInt(h, "X-RateLimit-Remaining")
	reset, okS := headerInt(h, "X-RateLimit-Reset")
	b.mu.Lock()
	defer b.mu.Unlock()
	if okL && limit > 0 {
		b.limit = limit
	}
	if !okR || !okS {
		return
	}
	b.state()
	// A second more than Globalping says, which it rounds to the second:
	// the client's hour must not end before Globalping's.
	end := b.now().Add(time.Duration(min(reset, maxReset)+1) * time.Second)
	spent := max(b.limit-left, 0)
	switch {
	case b.reset.IsZero() || end.After(b.reset.Add(sameWindow)) || (!b.known && end.Before(b.reset)):
		b.spent, b.reset = spent, end
	case end.Before(b.reset.Add(-sameWindow)):
		// An answer from an hour that has ended.
		return
	default:
		b.spent, b.reset = max(b.spent, spent), later(b.reset, end)
	}
	b.known = true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
