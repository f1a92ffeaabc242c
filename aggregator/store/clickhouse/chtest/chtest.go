// Package chtest gives tests a database of their own on the local ClickHouse
// that scripts/clickhouse.sh starts, for the store's own tests and for the
// end-to-end tests that run the aggregator on ClickHouse.
package chtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// DSNEnv names the ClickHouse the tests use; scripts/clickhouse.sh start
// prints a DSN for it.
const DSNEnv = "CATCHMAP_CLICKHOUSE_DSN"

// ServerDSN returns the test server's DSN. Without one the test skips on a
// developer's machine and fails in CI, where a skip would hide that the
// backend went untested.
func ServerDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		msg := DSNEnv + " is not set: run `export " + DSNEnv + "=$(scripts/clickhouse.sh start)` to test against a local ClickHouse"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return dsn
}

// runID keeps the databases of concurrent test runs apart.
var (
	runID  = fmt.Sprintf("%d_%d", time.Now().Unix(), os.Getpid())
	dbSeq  atomic.Int64
	dropMu sync.Mutex // 18.16 handles concurrent DROP DATABASE badly
)

// FreshDSN returns the server's DSN pointing at a new database named
// <prefix>_<run>_<n>, which the store creates on open; it is dropped when
// the test ends. Call it before starting whatever uses the database, so the
// drop runs after that user's own cleanup.
func FreshDSN(tb testing.TB, prefix string) string {
	tb.Helper()
	dsn := ServerDSN(tb)
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("%s is not a URL: %v", DSNEnv, err)
	}
	db := fmt.Sprintf("%s_%s_%d", prefix, runID, dbSeq.Add(1))
	u.Path = "/" + db
	tb.Cleanup(func() { drop(tb, dsn, db) })
	return u.String()
}

func drop(tb testing.TB, dsn, db string) {
	dropMu.Lock()
	defer dropMu.Unlock()
	opt, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		tb.Errorf("dropping database %s: parsing %s: %v", db, DSNEnv, err)
		return
	}
	opt.Auth.Database = "" // the server's default: db itself is going
	conn, err := clickhouse.Open(opt)
	if err != nil {
		tb.Errorf("dropping database %s: %v", db, err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		tb.Errorf("dropping database %s: %v", db, err)
	}
}
