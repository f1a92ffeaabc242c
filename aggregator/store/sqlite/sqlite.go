// Package sqlite is the embedded store of the aggregator: one SQLite file
// in WAL mode, written by one connection and read by a small pool, so that a
// single aggregator needs no database server.
//
// Durability: an Append that returned nil has been committed to the WAL.
// With the default synchronous=NORMAL the commit is written to the file
// (the OS page cache) before Append returns, so it survives the aggregator
// being killed (kill -9, OOM, panic); only an OS crash or power loss can
// take the last transactions with it, and never corrupts the database.
// WithSynchronousFull fsyncs the WAL on every commit to survive those too,
// at the cost of one fsync per batch.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/catchmap/catchmap/aggregator/store"
)

// Store is a store.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger
	w    *sql.DB // the single writer connection: writes never meet SQLITE_BUSY from each other
	r    *sql.DB // readers: WAL lets them run beside the writer
}

var _ store.Store = (*Store)(nil)

type config struct {
	synchronous string
	busyTimeout time.Duration
	readConns   int
}

// Option tunes Open.
type Option func(*config)

// WithSynchronousFull fsyncs the WAL at every commit, so that committed
// batches also survive an OS crash or power loss, not only a killed process.
func WithSynchronousFull() Option { return func(c *config) { c.synchronous = "FULL" } }

// WithBusyTimeout sets how long a statement waits for a lock held by another
// process (a backup, the sqlite3 shell) before failing with store.ErrUnavailable.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithReadConns sets the size of the read pool (default 4). A Scan holds
// one connection while its callback runs, so a callback that reads the store
// again needs a second one.
func WithReadConns(n int) Option { return func(c *config) { c.readConns = max(n, 1) } }

// Open opens the database at path, creating it if needed, and brings its
// schema up to date.
func Open(ctx context.Context, path string, log *slog.Logger, opts ...Option) (*Store, error) {
	cfg := config{synchronous: "NORMAL", busyTimeout: 5 * time.Second, readConns: 4}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, errors.New("sqlite store: empty database path: give the file to keep results in")
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("sqlite store: directory of %s does not exist: create it first", path)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Created owner-only: it holds the token hashes. SQLite gives the WAL
	// and shared-memory files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: create %s: %w", path, err)
	}
	f.Close()
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=on", cfg.busyTimeout.Milliseconds())
	// BEGIN IMMEDIATE takes the write lock up front, where busy_timeout
	// waits for it; a deferred transaction upgrading later could fail at
	// once with SQLITE_BUSY, which no timeout retries.
	w, err := sql.Open("sqlite3", dsn(path, common+"&_journal_mode=WAL&_synchronous="+cfg.synchronous+"&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s := &Store{path: path, log: log, w: w}
	// The writer creates the file and switches it to WAL before any reader
	// opens it, and migrations run before anyone reads the schema.
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite3", dsn(path, common+"&_query_only=on&_cache_size=-65536"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.readConns)
	r.SetMaxIdleConns(cfg.readConns)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, s.wrap(ctx, "open for reading", err)
	}
	log.Debug("sqlite store open", "path", path, "synchronous", cfg.synchronous)
	return s, nil
}

// dsn builds a file: URI, escaping what SQLite would read as URI syntax.
func dsn(path, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + params
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes both pools. The WAL is checkpointed into the main file when
// the last connection closes.
func (s *Store) Close() error {
	var rerr error
	if s.r != nil {
		rerr = s.r.Close()
	}
	return errors.Join(rerr, s.w.Close())
}

// Stats are cheap facts about the database, for metrics and /debug.
type Stats struct {
	Bytes     int64 // pages in the main file times the page size
	FreeBytes int64 // free pages (reused before the file grows)
	WALBytes  int64 // size of the -wal file, 0 if absent
	Write     sql.DBStats
	Read      sql.DBStats
}

// Stats reads the page counts and the WAL size; it does not count rows,
// which would scan the table.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var pages, free, size int64
	err := s.r.QueryRowContext(ctx,
		`SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)`).
		Scan(&pages, &free, &size)
	if err != nil {
		return Stats{}, s.wrap(ctx, "read stats", err)
	}
	st := Stats{Bytes: pages * size, FreeBytes: free * size, Write: s.w.Stats(), Read: s.r.Stats()}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		st.WALBytes = fi.Size()
	}
	return st, nil
}

// wrap maps a driver error to the store's sentinels. Cancellation passes
// through as the context's error; what a retry may fix wraps
// store.ErrUnavailable; a missing row is store.ErrNotFound.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("sqlite store: %s: %w", op, cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite store: %s: %w", op, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite store: %s: %w", op, store.ErrNotFound)
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull:
			return fmt.Errorf("sqlite store: %s: disk full on the volume holding %s: free space or move the database (%w): %w",
				op, s.path, store.ErrUnavailable, err)
		case sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrNoLFS, sqlite3.ErrProtocol, sqlite3.ErrNomem:
			return fmt.Errorf("sqlite store: %s: I/O error on %s: check the disk and permissions (%w): %w",
				op, s.path, store.ErrUnavailable, err)
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return fmt.Errorf("sqlite store: %s: %s is locked by another process: retry, or stop the other user (%w): %w",
				op, s.path, store.ErrUnavailable, err)
		case sqlite3.ErrReadonly:
			return fmt.Errorf("sqlite store: %s: %s is read-only: check its permissions and those of its directory (%w): %w",
				op, s.path, store.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite store: %s: %w", op, err)
}
