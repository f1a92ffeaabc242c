package atlas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	atlasimport "github.com/catchmap/catchmap/importer/atlas"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Results calls fn with each result of measurement id whose timestamp is
// in [start, stop] (a zero time leaves that end open), streaming: a poll
// of thousands of probes never sits in memory. Atlas filters on the time
// a probe measured, and results arrive late, so a poll should re-read a
// window well before its last one; results keep their record ids, so
// reading one twice stores it once.
//
// Only the request is retried: an answer that breaks off mid-stream is an
// error after fn has seen part of it.
func (c *Client) Results(ctx context.Context, id int64, start, stop time.Time, fn func(*atlasimport.Result) error) error {
	op := "reading the results of RIPE Atlas measurement " + idString(id)
	if id <= 0 {
		return fmt.Errorf("%s: %w", op, errNoID)
	}
	u, err := url.Parse(atlasimport.ResultsURL(c.base.String(), id, start, stop, false))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	q := u.Query()
	q.Set("format", "json")
	u.RawQuery = q.Encode()
	resp, err := c.do(ctx, op, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rd, err := atlasimport.NewReader(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for {
		res, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := fn(res); err != nil {
			return err
		}
	}
}

// SourceOptions configure a Source.
type SourceOptions struct {
	// Ident reads the site out of each answer: build it with
	// spec.NewIdentifier from the plan entry's spec, so that the
	// question it expects is the one the measurement asks.
	Ident *spec.Identifier
	// Target names every record; empty: each result's dst_name.
	Target string
	// Geo places, by public address, the probes Atlas has no location
	// for; nil leaves them unplaced.
	Geo atlasimport.Locator
	Log *slog.Logger
}

// Source turns the results of Atlas measurements into catchmap records.
// The conversion is the importer's (importer/atlas), so that a record
// fetched here is the record an import of the same result makes: probe
// "atlas:<id>", and the same id, so that fetching and importing one
// result stores it once. It is safe for concurrent use.
type Source struct {
	client *Client
	probes *ProbeCache
	opt    SourceOptions
}

// NewSource returns a Source that fetches through c and places probes with
// the metadata in probes.
func NewSource(c *Client, probes *ProbeCache, opt SourceOptions) (*Source, error) {
	if _, err := opt.converter(nil); err != nil {
		return nil, err
	}
	return &Source{client: c, probes: probes, opt: opt}, nil
}

func (o *SourceOptions) converter(ps atlasimport.Probes) (*atlasimport.Converter, error) {
	return atlasimport.NewConverter(atlasimport.Options{Ident: o.Ident, Target: o.Target, Probes: ps, Geo: o.Geo, Log: o.Log})
}

// batchSize is how many results wait for one probe lookup: large enough
// that a first poll of thousands of probes takes few probe requests,
// small enough to keep memory flat.
const batchSize = 1000

// Records calls fn with the records of measurement id's results in
// [start, stop] (see Client.Results). Probe metadata is looked up, for a
// batch of results at a time, before the batch is converted: the
// converter places a probe once, when it first sees it.
//
// The records carry source ripe-atlas, as the importer makes them; their
// probe ids, atlas:<id>, tell it already.
func (s *Source) Records(ctx context.Context, id int64, start, stop time.Time, fn func(*result.Record) error) error {
	known := atlasimport.Probes{}
	conv, err := s.opt.converter(known)
	if err != nil {
		return err
	}
	var batch []*atlasimport.Result
	flush := func() error {
		var ids []int64
		for _, r := range batch {
			if _, ok := known[r.PrbID]; !ok {
				ids = append(ids, r.PrbID)
			}
		}
		if len(ids) > 0 {
			got, err := s.probes.Lookup(ctx, ids)
			if err != nil {
				return fmt.Errorf("placing the probes of RIPE Atlas measurement %d: %w", id, err)
			}
			for pid, info := range got {
				known[pid] = info
			}
		}
		for _, r := range batch {
			if err := conv.Convert(r, fn); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err = s.client.Results(ctx, id, start, stop, func(r *atlasimport.Result) error {
		batch = append(batch, r)
		if len(batch) < batchSize {
			return nil
		}
		return flush()
	})
	if err != nil {
		return err
	}
	return flush()
}
