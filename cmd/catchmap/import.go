package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/catchmap/catchmap/aggregator/geo"
	"github.com/catchmap/catchmap/aggregator/store/sqlite"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/importer/atlas"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

type importCmd struct {
	RipeAtlas importAtlasCmd `cmd:"" name:"ripe-atlas" help:"Import RIPE Atlas DNS results (CHAOS TXT, NSID) as catchmap results."`
}

type importAtlasCmd struct {
	Sources []string `arg:"" optional:"" name:"source" help:"Atlas results: a file (JSON array, one result per line, or a /latest/ object; plain, gzip or bzip2), an http(s) URL of Atlas results, or - for stdin." placeholder:"FILE|URL"`

	Msm      []int64 `name:"msm" help:"Fetch the results of this Atlas measurement id from the Atlas API; repeat for more." placeholder:"ID"`
	Start    string  `help:"With --msm: results from this time (RFC 3339, 2006-01-02, or Unix seconds)." placeholder:"TIME"`
	Stop     string  `help:"With --msm: results up to this time." placeholder:"TIME"`
	Latest   bool    `help:"With --msm: each probe's latest results only (the /latest/ endpoint)."`
	AtlasURL string  `name:"atlas-url" help:"Base URL of the Atlas API." default:"https://atlas.ripe.net" placeholder:"URL"`
	AtlasKey string  `name:"atlas-key" env:"RIPE_ATLAS_KEY" help:"Atlas API key, for private measurements (sent as Authorization: Key)." placeholder:"KEY"`

	Probes    []string `help:"Atlas probe metadata (the /api/v2/probes/ JSON, an array of probes, or the daily probe archive) to place the probes; repeat for more files." placeholder:"FILE" type:"existingfile"`
	GeoIPCity string   `name:"geoip-city" help:"GeoLite2/GeoIP2 City mmdb, to place probes missing from --probes by their public address." placeholder:"FILE" type:"existingfile"`
	GeoIPASN  string   `name:"geoip-asn" help:"GeoLite2 ASN mmdb, to fill the ASN of probes missing from --probes." placeholder:"FILE" type:"existingfile"`

	Preset    string `help:"Site identification preset for the measured service (see catchmap presets)." placeholder:"NAME" xor:"site"`
	SiteRegex string `help:"Regexp that finds the site code in the identity: its group named site, else its non-empty capture groups joined with \"-\"; works on any TXT measurement." placeholder:"REGEXP" xor:"site"`
	Target    string `help:"Target name for every record (default: each result's dst_name, else dst_addr)." placeholder:"NAME"`

	DB         string `name:"db" help:"Store the records in this SQLite database." placeholder:"FILE" xor:"dest"`
	Aggregator string `help:"Upload the records to this aggregator (needs its admin token)." placeholder:"URL" xor:"dest"`
	Token      string `help:"The aggregator's admin token." env:"CATCHMAP_ADMIN_TOKEN" placeholder:"TOKEN"`
	Output     string `short:"o" help:"Write the records to this file (default: stdout, unless --db or --aggregator)." placeholder:"FILE" xor:"dest"`
	Format     string `help:"Output file format: ndjson or csv." enum:"ndjson,csv" default:"ndjson"`
	tlsFlags   `embed:""`
}

// Batch sizes: the store appends a batch per transaction; an upload stays
// well under the aggregator's default max_batch (10,000) and body limit.
const (
	storeBatch  = 10_000
	uploadBatch = 5_000
)

func (c *importAtlasCmd) Run(e *env) error {
	if len(c.Sources) == 0 && len(c.Msm) == 0 {
		return usageErrorf("import ripe-atlas: nothing to import: give result files or URLs, or --msm ID (see catchmap import ripe-atlas --help)")
	}
	if len(c.Msm) == 0 && (c.Start != "" || c.Stop != "" || c.Latest) {
		return usageErrorf("import ripe-atlas: --start, --stop and --latest select results of --msm: give --msm ID")
	}
	start, err := parseTime("--start", c.Start)
	if err != nil {
		return err
	}
	stop, err := parseTime("--stop", c.Stop)
	if err != nil {
		return err
	}
	if c.Aggregator != "" && c.Token == "" {
		return usageErrorf("import ripe-atlas: --aggregator needs the aggregator's admin token: give --token or set CATCHMAP_ADMIN_TOKEN")
	}
	ident, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodDNS, Preset: c.Preset, SiteRegex: c.SiteRegex})
	if err != nil {
		return usageErrorf("import ripe-atlas: %v", err)
	}
	opt := atlas.Options{Ident: ident, Target: c.Target, Probes: atlas.Probes{}, Log: e.log}
	for _, p := range c.Probes {
		if err := readProbesFile(p, opt.Probes); err != nil {
			return usageErrorf("import ripe-atlas: --probes %s: %v", p, err)
		}
	}
	if c.GeoIPCity != "" || c.GeoIPASN != "" {
		db, err := geo.Open(c.GeoIPCity, c.GeoIPASN)
		if err != nil {
			return usageErrorf("import ripe-atlas: %v", err)
		}
		defer db.Close()
		opt.Geo = db
	}
	conv, err := atlas.NewConverter(opt)
	if err != nil {
		return err
	}

	sources := append([]string{}, c.Sources...)
	for _, id := range c.Msm {
		sources = append(sources, atlas.ResultsURL(c.AtlasURL, id, start, stop, c.Latest))
	}
	out, err := c.sink(e)
	if err != nil {
		return err
	}
	// A download of months of results may take long: no overall timeout,
	// but a server that stops answering is given up on.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 2 * time.Minute
	imp := &importer{e: e, conv: conv, out: out, key: token.Parse(c.AtlasKey),
		client: &http.Client{Transport: tr}, progress: isTerminal(e.stderr), kinds: map[result.ErrorKind]int{}}
	runErr := imp.all(sources)
	stored, closeErr := out.close(e.ctx)
	imp.summary(stored)
	if err := errors.Join(runErr, closeErr); err != nil {
		return fmt.Errorf("import ripe-atlas: %w", err)
	}
	return nil
}

// parseTime reads RFC 3339, a date, or Unix seconds; empty is the zero time.
func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErrorf("import ripe-atlas: %s %q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or Unix seconds", flag, s)
}

func readProbesFile(path string, ps atlas.Probes) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return atlas.ReadProbes(f, ps)
}

// importer runs one import: sources in, records out, counts for the summary.
type importer struct {
	e        *env
	conv     *atlas.Converter
	out      sink
	key      token.Token
	client   *http.Client
	progress bool

	results, records int
	kinds            map[result.ErrorKind]int
}

func (im *importer) all(sources []string) error {
	for _, src := range sources {
		if err := im.one(src); err != nil {
			return err
		}
	}
	return nil
}

// one imports one source. Records already written stay written: a
// re-import after a failure stores nothing twice.
func (im *importer) one(src string) error {
	in, size, err := im.open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	counted := &countingReader{r: in}
	rd, err := atlas.NewReader(counted)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	bar := newProgress(im.e.stderr, im.progress, src, size)
	defer bar.done(rd.Count)
	write := func(r *result.Record) error {
		im.records++
		im.kinds[r.ErrorKind]++
		return im.out.write(im.e.ctx, r)
	}
	for {
		res, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		im.results++
		if err := im.conv.Convert(res, write); err != nil {
			return err
		}
		if rd.Count()%1024 == 0 {
			if err := im.e.ctx.Err(); err != nil {
				return fmt.Errorf("%s: stopped after %d results: %w", src, rd.Count(), err)
			}
			bar.update(rd.Count(), counted.n)
		}
	}
}

// open opens a file, stdin (-) or a URL; size is -1 when unknown.
func (im *importer) open(src string) (io.ReadCloser, int64, error) {
	switch {
	case src == "-":
		return io.NopCloser(im.e.stdin), -1, nil
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		return atlas.Fetch(im.e.ctx, im.client, src, im.key)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, 0, fmt.Errorf("opening Atlas results: %w", err)
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

func (im *importer) summary(stored int) {
	var kinds []string
	if n := im.kinds[result.KindNone]; n > 0 {
		kinds = append(kinds, "ok "+strconv.Itoa(n))
	}
	for _, k := range result.Kinds {
		if n := im.kinds[k]; n > 0 {
			kinds = append(kinds, string(k)+" "+strconv.Itoa(n))
		}
	}
	msg := fmt.Sprintf("imported %d Atlas results as %d records", im.results, im.records)
	if stored >= 0 {
		msg += fmt.Sprintf(", stored %d new (%d already stored)", stored, im.records-stored)
	}
	if len(kinds) > 0 {
		msg += ": " + strings.Join(kinds, ", ")
	}
	fmt.Fprintln(im.e.stderr, msg)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progress draws one status line on a terminal; elsewhere it is silent, so
// logs and pipes get only the summary.
type progress struct {
	w     io.Writer
	on    bool
	src   string
	size  int64
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, on bool, src string, size int64) *progress {
	now := time.Now()
	return &progress{w: w, on: on, src: src, size: size, start: now, last: now}
}

func (p *progress) update(results int, read int64) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(results, read)
}

func (p *progress) draw(results int, read int64) {
	el := time.Since(p.start).Seconds()
	line := fmt.Sprintf("%s: %d results", p.src, results)
	if el > 0 {
		line += fmt.Sprintf(", %.0f/s", float64(results)/el)
	}
	if p.size > 0 && read > 0 {
		frac := min(float64(read)/float64(p.size), 1)
		line += fmt.Sprintf(", %.0f%%", 100*frac)
		if frac < 1 {
			eta := time.Duration(el * (1 - frac) / frac * float64(time.Second))
			line += ", ETA " + eta.Round(time.Second).String()
		}
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

func (p *progress) done(results func() int) {
	if p.on {
		p.draw(results(), p.size)
		fmt.Fprintln(p.w)
	}
}

// sink is where records go. close flushes and returns how many records
// were newly stored, -1 when the sink cannot tell (a file).
type sink interface {
	write(ctx context.Context, r *result.Record) error
	close(ctx context.Context) (stored int, err error)
}

func (c *importAtlasCmd) sink(e *env) (sink, error) {
	switch {
	case c.DB != "":
		st, err := sqlite.Open(e.ctx, c.DB, e.log)
		if err != nil {
			return nil, fmt.Errorf("import ripe-atlas: %w", err)
		}
		return &batcher{size: storeBatch, flush: st.Append, closeFn: st.Close}, nil
	case c.Aggregator != "":
		hc, err := c.httpClient("import ripe-atlas", 2*time.Minute)
		if err != nil {
			return nil, err
		}
		ac, err := api.NewClient(c.Aggregator, token.Parse(c.Token), hc)
		if err != nil {
			return nil, usageErrorf("import ripe-atlas: --aggregator %q: give an http or https URL, such as http://127.0.0.1:8080", c.Aggregator)
		}
		u := &uploader{api: ac}
		return &batcher{size: uploadBatch, flush: u.post}, nil
	}
	if c.Output == "" || c.Output == "-" {
		return newFileSink(nopWriteCloser{e.stdout}, c.Format), nil
	}
	f, err := os.Create(c.Output)
	if err != nil {
		return nil, fmt.Errorf("import ripe-atlas: %w", err)
	}
	return newFileSink(f, c.Format), nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// fileSink writes NDJSON or CSV with the result package's writers.
type fileSink struct {
	f   io.WriteCloser
	bw  *bufio.Writer
	put func(*result.Record) error
	fin func() error
}

func newFileSink(f io.WriteCloser, format string) *fileSink {
	s := &fileSink{f: f, bw: bufio.NewWriterSize(f, 256<<10)}
	if format == formatCSV {
		cw := result.NewCSVWriter(s.bw)
		s.put, s.fin = cw.Write, cw.Flush
	} else {
		nw := result.NewNDJSONWriter(s.bw)
		s.put, s.fin = nw.Write, func() error { return nil }
	}
	return s
}

func (s *fileSink) write(_ context.Context, r *result.Record) error { return s.put(r) }

func (s *fileSink) close(context.Context) (int, error) {
	err := errors.Join(s.fin(), s.bw.Flush(), s.f.Close())
	if err != nil {
		return -1, fmt.Errorf("writing the records: %w", err)
	}
	return -1, nil
}

// batcher groups records for a store or an aggregator.
type batcher struct {
	size    int
	buf     []result.Record
	flush   func(context.Context, []result.Record) (int, error)
	closeFn func() error
	stored  int
}

func (b *batcher) write(ctx context.Context, r *result.Record) error {
	b.buf = append(b.buf, *r)
	if len(b.buf) < b.size {
		return nil
	}
	return b.send(ctx)
}

func (b *batcher) send(ctx context.Context) error {
	if len(b.buf) == 0 {
		return nil
	}
	n, err := b.flush(ctx, b.buf)
	if err != nil {
		return err
	}
	b.stored += n
	b.buf = b.buf[:0]
	return nil
}

func (b *batcher) close(ctx context.Context) (int, error) {
	// The last records go out even after a failed source: what was read is
	// good, and a re-import skips it.
	err := b.send(context.WithoutCancel(ctx))
	if b.closeFn != nil {
		err = errors.Join(err, b.closeFn())
	}
	return b.stored, err
}

// uploader posts batches to an aggregator as gzip NDJSON with the admin
// token, so that the aggregator keeps each record's Atlas probe.
type uploader struct {
	api *api.Client
}

// uploadTries bounds the attempts at one batch; 4xx answers are not retried.
const uploadTries = 5

func (u *uploader) post(ctx context.Context, rs []result.Record) (int, error) {
	body, err := api.EncodeResults(rs)
	if err != nil {
		return 0, err
	}
	return backoff.Retry(ctx, func() (int, error) {
		return u.once(ctx, body, len(rs))
	}, backoff.WithMaxTries(uploadTries), backoff.WithBackOff(backoff.NewExponentialBackOff()))
}

func (u *uploader) once(ctx context.Context, body []byte, n int) (int, error) {
	ir, err := u.api.PostEncodedResults(ctx, body)
	if err == nil {
		return ir.Stored, nil
	}
	var se *api.StatusError
	var ne *api.NetError
	switch {
	case errors.As(err, &se):
		err = fmt.Errorf("uploading %d records to %s: %d %s: %s", n, u.api.Base(), se.Status, http.StatusText(se.Status), se.Message)
		if se.Auth() {
			err = fmt.Errorf("%w (is --token the aggregator's admin token?)", err)
		}
		if !se.Retryable() {
			return 0, backoff.Permanent(err)
		}
		return 0, err
	case errors.As(err, &ne):
		return 0, fmt.Errorf("uploading %d records to %s: %w", n, u.api.Base(), ne.Err)
	}
	return 0, fmt.Errorf("uploading to %s: %w", u.api.Base(), err)
}
