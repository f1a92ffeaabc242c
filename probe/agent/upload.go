package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/probe/result"
)

// httpError is a failed exchange with the aggregator, sorted into an error
// kind that decides what the agent does next.
type httpError struct {
	kind   string
	status int
	err    error
}

func (e *httpError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("aggregator answered %d: %v", e.status, e.err)
	}
	return fmt.Sprintf("aggregator unreachable: %v", e.err)
}

func (e *httpError) Unwrap() error { return e.err }

func errorKind(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return he.kind
	}
	return kindNetwork
}

// apiError sorts an error of the API client into an error kind. The error
// carries the aggregator's api.Error message. An error that is none of the
// client's is the agent's own request, which no retry can fix.
func apiError(err error) error {
	var ne *api.NetError
	var ae *api.AnswerError
	var se *api.StatusError
	switch {
	case errors.As(err, &ne):
		return &httpError{kind: kindNetwork, err: tlsHint(err)}
	case errors.As(err, &ae):
		return &httpError{kind: kindStatus, err: err}
	case !errors.As(err, &se):
		return &httpError{kind: kindRejected, err: err}
	}
	kind := kindStatus
	switch {
	case se.Auth():
		kind = kindUnauthorized
	case se.Rejected():
		kind = kindRejected
	case se.Throttled():
		kind = kindThrottled
	case se.Status >= 500:
		kind = kindServer
	}
	return &httpError{kind: kind, status: se.Status, err: errors.New(se.Message)}
}

// uploadLoop uploads the spool every upload interval until ctx ends.
func (a *Agent) uploadLoop(ctx context.Context) {
	bo := a.newBackoff()
	for {
		if sleep(ctx, a.clock, a.cfg.UploadInterval) != nil {
			return
		}
		a.uploadAll(ctx, bo)
	}
}

// uploadAll uploads batches until the spool is empty. With a backoff it
// retries what a retry can fix, waiting longer each time; without one (the
// drain) it stops at the first failure.
func (a *Agent) uploadAll(ctx context.Context, bo *backoff.ExponentialBackOff) {
	if until := a.authBlocked.Load(); until != 0 && a.clock.Now().UnixNano() < until {
		return
	}
	// In the loop, an upload in flight when ctx ends gets the drain timeout
	// to finish: cut short, the aggregator may have committed a batch the
	// spool still holds, and it would go twice. The drain's own ctx is
	// already bounded.
	reqCtx := ctx
	if bo != nil {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(a.cfg.DrainTimeout, cancel) })
		defer stop()
	}
	for ctx.Err() == nil {
		b, err := a.spool.Peek(a.cfg.BatchSize)
		if err != nil {
			a.log.Error("cannot read the spool: uploads paused until the next interval", "err", err)
			return
		}
		if b == nil {
			return
		}
		err = a.send(reqCtx, b.Records)
		if err == nil {
			if err := a.spool.Ack(b); err != nil {
				a.log.Error("cannot delete uploaded results from the spool: they will be sent again", "err", err)
				return
			}
			if bo != nil {
				bo.Reset()
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		kind := errorKind(err)
		if kind == kindUnauthorized {
			a.authBlocked.Store(a.clock.Now().Add(authRetry).UnixNano())
			a.log.Error("AGGREGATOR REFUSES THIS PROBE'S TOKEN: uploads stopped, results keep spooling; get a new token and restart",
				"err", err, "spooled", a.spool.Len(), "next_try_in", authRetry)
			return
		}
		if bo == nil {
			a.log.Warn("last upload failed: results stay spooled for the next start", "err", err, "spooled", a.spool.Len())
			return
		}
		wait := bo.NextBackOff()
		a.log.Warn("upload failed: results stay spooled, retrying", "err", err, "kind", kind, "retry_in", wait, "spooled", a.spool.Len())
		if sleep(ctx, a.clock, wait) != nil {
			return
		}
	}
}

// send uploads recs. A batch the aggregator refuses as such (400, 413) is
// split in halves until the refused records are alone, and those go to the
// quarantine file: the rest gets through and nothing loops forever. It
// returns the errors a retry may fix, and refused tokens.
func (a *Agent) send(ctx context.Context, recs []result.Record) error {
	if len(recs) == 0 {
		return nil
	}
	err := a.post(ctx, recs)
	if err == nil {
		return nil
	}
	if errorKind(err) != kindRejected {
		return err
	}
	if len(recs) == 1 {
		a.log.Error("aggregator refused a record: quarantined", "id", recs[0].ID, "target", recs[0].Target, "err", err)
		if qerr := a.spool.Quarantine(recs, err.Error()); qerr != nil {
			a.log.Error("cannot quarantine a refused record: dropped", "id", recs[0].ID, "err", qerr)
		}
		return nil
	}
	half := len(recs) / 2
	if err := a.send(ctx, recs[:half]); err != nil {
		return err
	}
	return a.send(ctx, recs[half:])
}

// post sends one batch; nil means the aggregator committed it.
func (a *Agent) post(ctx context.Context, recs []result.Record) error {
	start := time.Now()
	ir, err := a.api.PostResults(ctx, recs)
	var ae *api.AnswerError
	if err != nil && !errors.As(err, &ae) { // 200 alone means committed; the counts are for the log
		err = apiError(err)
		a.m.uploadErrors.WithLabelValues(errorKind(err)).Inc()
		return err
	}
	a.m.uploaded.Add(float64(len(recs)))
	a.log.Debug("uploaded", "records", len(recs), "stored", ir.Stored, "duplicate", ir.Duplicate,
		"took", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 3, 64)+"s")
	return nil
}
