// Package store declares what the aggregator keeps and the small interfaces
// every backend implements: results (appended as a transaction, read by target
// and window) and the aggregator's state (probes and token hashes, the plan,
// annotations and BGP events), so that several aggregators on one shared
// store are interchangeable. Backends live in sub-packages (sqlite, ...);
// storetest holds the conformance suite they all pass.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/maps/summary"
	"github.com/catchmap/catchmap/probe/result"
)

// Sentinel errors. Backends wrap them so callers can use errors.Is.
var (
	// ErrNotFound: no such probe, token, plan or row.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the backend cannot serve now (disk, lock, network);
	// a retry may succeed. HTTP handlers answer 503 for it.
	ErrUnavailable = errors.New("store unavailable")
)

// Query selects results. From is inclusive, To exclusive; zero values leave
// that bound open.
type Query struct {
	Target string // empty: every target
	Probe  string // empty: every probe
	From   time.Time
	To     time.Time
	Limit  int // 0: no limit
}

// Results is the result log.
type Results interface {
	// Append stores the batch in one transaction: all of it is durable when
	// Append returns nil, none of it otherwise. Records whose ID is already
	// stored are skipped, so a re-sent batch stores nothing twice; stored
	// counts the new ones.
	Append(ctx context.Context, rs []result.Record) (stored int, err error)
	// AppendBatches stores several batches as Append stores one and says
	// how many new records each held: a record whose ID is stored already,
	// or appears earlier in the call, counts in none. A bad record anywhere
	// stores nothing. The aggregator merges concurrent uploads this way
	// (group commit): SQLite shares one commit among them, ClickHouse one
	// INSERT, and so one part.
	AppendBatches(ctx context.Context, batches [][]result.Record) (stored []int, err error)
	// Scan calls fn for every record matching q, in time order. fn's
	// record is only valid during the call. An error from fn stops the scan
	// and is returned.
	Scan(ctx context.Context, q Query, fn func(*result.Record) error) error
	// Targets lists the distinct targets with results in [from, to).
	Targets(ctx context.Context, from, to time.Time) ([]string, error)
	// DeleteBefore removes results older than t (retention).
	DeleteBefore(ctx context.Context, t time.Time) (deleted int64, err error)
}

// Summarizer is what a Results backend may offer besides Scan: the records
// of a query condensed per probe, so that a map of a long window reads a
// few rows per probe instead of every record. Callers check for it with a
// type assertion and fall back to Scan.
type Summarizer interface {
	// ScanSummaries calls fn with summaries that together hold exactly the
	// records Scan would give for q (q.Limit must be 0), each within q's
	// target and window, in no particular order; a probe may have several.
	// fn's summary is only valid during the call. An error from fn stops
	// the scan and is returned.
	ScanSummaries(ctx context.Context, q Query, fn func(*summary.Summary) error) error
}

// StepSummarizer is what a Results backend may offer for timelines: the
// records of a query condensed per probe and step, so that a timeline reads
// a few rows per probe and step instead of every record. Callers check for
// it with a type assertion and fall back to Scan.
type StepSummarizer interface {
	// ScanStepSummaries calls fn with summaries that together hold exactly
	// the records Scan would give for q (q.From set, q.Limit 0), each
	// within q's target and window and within one step [q.From+k*step,
	// q.From+(k+1)*step), in no particular order; Sites' RTTs may be left
	// empty, since timelines do not use them. fn's summary is only valid
	// during the call. An error from fn stops the scan and is returned.
	ScanStepSummaries(ctx context.Context, q Query, step time.Duration, fn func(*summary.Summary) error) error
}

// Probes keeps registered probes and the hashes of their tokens. Tokens
// themselves are never stored.
type Probes interface {
	CreateProbe(ctx context.Context, p api.Probe, tokenHash []byte) error
	// ProbeByToken finds the live (not revoked) probe with this token hash;
	// ErrNotFound otherwise.
	ProbeByToken(ctx context.Context, tokenHash []byte) (api.Probe, error)
	Probe(ctx context.Context, id string) (api.Probe, error)
	ListProbes(ctx context.Context) ([]api.Probe, error)
	// RevokeProbe makes the probe's token unusable; ErrNotFound if no such probe.
	RevokeProbe(ctx context.Context, id string) error
	// TouchProbes records when and from where probes last uploaded, all in
	// one write: the aggregator gathers the touches of the uploads it
	// commits together. A touch of a probe that does not exist is left out
	// and makes the call return ErrNotFound, once the others are recorded.
	TouchProbes(ctx context.Context, ts []Touch) error
}

// Touch is a probe's upload, as TouchProbes records it.
type Touch struct {
	ID   string
	Seen time.Time
	Addr string
}

// Plans keeps the measurement plan.
type Plans interface {
	// PutPlan replaces the plan.
	PutPlan(ctx context.Context, p api.Plan) error
	// Plan returns the plan; an empty plan (no error) before any PutPlan.
	Plan(ctx context.Context) (api.Plan, error)
}

// Annotations keeps operator notes on the timeline.
type Annotations interface {
	AddAnnotation(ctx context.Context, a api.Annotation) error
	// Annotations lists notes in [from, to) for target (notes with an empty
	// target apply to every target), in time order.
	Annotations(ctx context.Context, target string, from, to time.Time) ([]api.Annotation, error)
}

// Events keeps BGP events per prefix.
type Events interface {
	AddEvents(ctx context.Context, es []api.Event) error
	// Events lists events in [from, to) for any of prefixes, in time order.
	Events(ctx context.Context, prefixes []string, from, to time.Time) ([]api.Event, error)
}

// Store is everything an aggregator keeps.
type Store interface {
	Results
	Probes
	Plans
	Annotations
	Events
	Close() error
}
