// Package clickhouse is the store for deployments that outgrow one SQLite
// file: several stateless `catchmap serve` instances share one ClickHouse
// (a single server, or a cluster behind a Distributed table, see
// docs/clickhouse.md). It speaks ClickHouse's native protocol (port 9000);
// the HTTP interface is not supported.
//
// Tested against ClickHouse 18.16 (Debian's package) and kept to SQL that
// current releases accept too: times are UInt64 microseconds (18.16 has no
// DateTime64), no LowCardinality, no multiple JOINs, no TTL.
//
// Consistency: ClickHouse has no unique keys and no transactions, so
//
//   - results live in a ReplacingMergeTree ordered by (target, time, id):
//     rows equal on that key are one record. Every read deduplicates (FINAL,
//     DISTINCT), so a batch re-sent to another instance is never counted
//     twice. Append counts as stored the records whose id its own SELECT did
//     not find: two instances appending the same batch at the same moment
//     may both report it stored, but reads still see it once.
//   - a record is identified by (target, time, id), not by id alone as in
//     SQLite; a re-sent record is identical, so this only differs for a
//     client that re-uses an id for another measurement.
//   - an Append (or AppendBatches) is one INSERT. ClickHouse writes one
//     part per day (partition), each atomically; a batch spanning midnight
//     UTC that fails half way may leave one day stored. Re-sending it is
//     harmless.
//   - state changes never read-modify-write a row: touches and revocations
//     are rows of their own (ReplacingMergeTree keeping the newest), so a
//     touch on one instance cannot undo a revocation made on another.
//   - maps read summaries of past buckets that Compact makes (rollup.go);
//     they are exact as long as the instances' clocks differ by less than
//     a minute and every compaction sees every insert that has returned.
package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/catchmap/catchmap/aggregator/store"
)

// Store is a store.Store on a ClickHouse database. It is safe for concurrent
// use, and several Stores (in several processes) may share one database.
type Store struct {
	conn driver.Conn
	db   string
	addr string // for error messages: host:port, never the password
	log  *slog.Logger
	cfg  config
}

var _ store.Store = (*Store)(nil)

type config struct {
	dialTimeout   time.Duration
	querySlices   int
	grace, margin time.Duration    // of the rollup (rollup.go)
	now           func() time.Time // the rollup's clock
}

// Option tunes Open.
type Option func(*config)

// WithDialTimeout bounds connecting to ClickHouse (default: the DSN's
// dial_timeout, else 5s); past it the call fails with store.ErrUnavailable.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithQuerySlices sets into how many time slices, queried at once, a map
// cuts its window (default 4). ClickHouse deduplicates (FINAL) in one
// thread per query; slices spread a map over the server's cores. 1 turns
// slicing off.
func WithQuerySlices(n int) Option { return func(c *config) { c.querySlices = max(n, 1) } }

// mutationWait bounds how long DeleteBefore waits for ClickHouse to finish
// deleting the rows of a partly expired day.
const mutationWait = 5 * time.Minute

// WithClock sets the clock that the rollup's marks and snapshots read
// (time.Now otherwise). Every instance on one database must keep clocks
// that differ by less than the rollup's margin.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// DefaultDatabase is used when the DSN names none.
const DefaultDatabase = "catchmap"

// identifier is what Open accepts as a database name: it is written into
// SQL unquoted, so it must need no quoting.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// parseDSN checks a clickhouse://user:pass@host:9000/db DSN and returns the
// driver options. Its errors never contain the password.
func parseDSN(dsn string) (*clickhouse.Options, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the DSN, password included
		}
		return nil, fmt.Errorf("clickhouse store: bad DSN: %v: write it as clickhouse://user:password@host:9000/database", err)
	}
	switch u.Scheme {
	case "clickhouse":
	case "http", "https":
		return nil, errors.New("clickhouse store: the ClickHouse HTTP interface is not supported: " +
			"use the native protocol, clickhouse://user:password@host:9000/database")
	default:
		return nil, fmt.Errorf("clickhouse store: DSN scheme %q is not clickhouse: write it as clickhouse://user:password@host:9000/database", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("clickhouse store: DSN has no host: write it as clickhouse://user:password@host:9000/database")
	}
	for _, h := range strings.Split(u.Host, ",") {
		_, port, err := net.SplitHostPort(h)
		if err != nil {
			return nil, fmt.Errorf("clickhouse store: DSN host %q has no port: give the native protocol port, usually 9000", h)
		}
		if port == "8123" || port == "8443" {
			return nil, fmt.Errorf("clickhouse store: port %s is ClickHouse's HTTP interface, which is not supported: "+
				"use the native protocol port, usually 9000 (9440 with TLS)", port)
		}
	}
	opt, err := clickhouse.ParseDSN(u.String())
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("clickhouse store: bad DSN %s: %v", u.Redacted(), err)
	}
	if opt.Auth.Database == "" {
		opt.Auth.Database = DefaultDatabase
	}
	if !identifier.MatchString(opt.Auth.Database) {
		return nil, fmt.Errorf("clickhouse store: database name %q: use letters, digits and _ only, not starting with a digit", opt.Auth.Database)
	}
	opt.Protocol = clickhouse.Native
	return opt, nil
}

// Open connects to the database named in dsn
// (clickhouse://user:password@host:9000/database), creating it if needed,
// and brings its schema up to date. Several instances may Open the same
// database at once.
func Open(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*Store, error) {
	cfg := config{querySlices: 4, now: time.Now, grace: defaultGrace, margin: defaultMargin}
	for _, o := range opts {
		o(&cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opt, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	// Options beat the DSN, which beats the defaults.
	opt.DialTimeout = cmp.Or(cfg.dialTimeout, opt.DialTimeout, 5*time.Second)
	// A Scan holds one connection while its callback runs.
	opt.MaxOpenConns = cmp.Or(opt.MaxOpenConns, 8)
	opt.MaxIdleConns = opt.MaxOpenConns
	if opt.Compression == nil {
		opt.Compression = &clickhouse.Compression{Method: defaultCompression(opt.Addr)}
	}
	s := &Store{db: opt.Auth.Database, addr: strings.Join(opt.Addr, ","), log: log, cfg: cfg}
	if s.conn, err = clickhouse.Open(opt); err != nil {
		return nil, s.wrap(ctx, "connect", err)
	}
	err = s.conn.Ping(ctx)
	if isCode(err, codeUnknownDatabase) {
		if err = createDatabase(ctx, opt); err == nil {
			err = s.conn.Ping(ctx)
		}
	}
	if err != nil {
		s.conn.Close()
		return nil, s.wrap(ctx, "connect", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.conn.Close()
		return nil, err
	}
	log.Info("clickhouse store open", "addr", s.addr, "database", s.db)
	return s, nil
}

// createDatabase creates opt's database through a connection to the
// server's default one: a connection naming a missing database is refused.
func createDatabase(ctx context.Context, opt *clickhouse.Options) error {
	o := *opt
	o.Auth.Database = ""
	o.MaxOpenConns, o.MaxIdleConns = 1, 1
	conn, err := clickhouse.Open(&o)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+opt.Auth.Database)
}

// defaultCompression is the wire compression when the DSN names none: LZ4
// across a network, where results shrink several times, and none to a
// server on this host, where compressing only costs both ends CPU (a tenth
// of ingest's, measured on loopback).
func defaultCompression(addrs []string) clickhouse.CompressionMethod {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return clickhouse.CompressionLZ4
		}
	}
	return clickhouse.CompressionNone
}

// Database is the ClickHouse database the store uses.
func (s *Store) Database() string { return s.db }

// Close closes the connection pool.
func (s *Store) Close() error { return s.conn.Close() }

// ClickHouse error codes the store reacts to.
const codeUnknownDatabase = 81

// codeColumnExists is ILLEGAL_COLUMN, which ADD COLUMN of a column that
// exists gets.
const codeColumnExists = 44

// unavailableCodes are server errors a retry (later, or on another
// replica) may fix.
var unavailableCodes = map[int32]bool{
	32:  true, // ATTEMPT_TO_READ_AFTER_EOF: the server went away mid-answer
	159: true, // TIMEOUT_EXCEEDED
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	225: true, // NO_ZOOKEEPER
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY: a replica lost ZooKeeper
	252: true, // TOO_MANY_PARTS: inserts faster than merges
	279: true, // ALL_CONNECTION_TRIES_FAILED: a Distributed table's shards are down
	999: true, // KEEPER_EXCEPTION
}

func isCode(err error, code int32) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == code
}

// wrap maps a driver error to the store's sentinels. Cancellation passes
// through as the context's error; what a retry may fix (connection refused
// or lost, timeouts, an overloaded server) wraps store.ErrUnavailable.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("clickhouse store: %s: %w", op, cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("clickhouse store: %s: %w", op, err)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("clickhouse store: %s: %w", op, err)
	}
	if unavailable(err) {
		return fmt.Errorf("clickhouse store: %s: cannot reach ClickHouse at %s: check that it runs and the DSN's host and port (%w): %w",
			op, s.addr, store.ErrUnavailable, err)
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if unavailableCodes[ex.Code] {
			return fmt.Errorf("clickhouse store: %s: ClickHouse at %s is overloaded or degraded: retry later (%w): %w",
				op, s.addr, store.ErrUnavailable, err)
		}
		if ex.Code == codeUnknownDatabase {
			return fmt.Errorf("clickhouse store: %s: database %s does not exist on %s: create it, or let catchmap create it (%w)",
				op, s.db, s.addr, err)
		}
	}
	return fmt.Errorf("clickhouse store: %s: %w", op, err)
}

// unavailable reports errors of the network rather than of the query.
func unavailable(err error) bool {
	if errors.Is(err, clickhouse.ErrAcquireConnTimeout) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
