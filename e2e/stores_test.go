package e2e

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// clickhouseDSNEnv names the ClickHouse the tests use; scripts/clickhouse.sh
// start prints a DSN for it.
const clickhouseDSNEnv = "CATCHMAP_CLICKHOUSE_DSN"

// storeKind is a store `catchmap serve` can run on.
type storeKind string

const (
	sqliteStore     storeKind = "sqlite"
	clickhouseStore storeKind = "clickhouse"
)

// eachStore runs test once per store, as subtests named after the store,
// so that the aggregator's guarantees are checked on every backend.
func eachStore(t *testing.T, test func(t *testing.T, s storeKind)) {
	for _, s := range []storeKind{sqliteStore, clickhouseStore} {
		t.Run(string(s), func(t *testing.T) { test(t, s) })
	}
}

// storeArgs returns the flags that put an aggregator in dir on store s.
// ClickHouse gets a database of its own, dropped when the test ends, so
// that the tests (and concurrent runs) never see each other's data.
func storeArgs(t *testing.T, s storeKind, dir string) []string {
	t.Helper()
	switch s {
	case sqliteStore:
		return []string{"--db", filepath.Join(dir, "catchmap.db")}
	case clickhouseStore:
		return []string{"--store", freshClickHouseDSN(t)}
	}
	t.Fatalf("unknown store %q", s)
	return nil
}

// freshClickHouseDSN returns the test server's DSN with a new database
// name, catchmap_e2e_<random>; the aggregator creates the database on
// open, and the test's cleanup drops it. Without a DSN the test skips on a
// developer's machine and fails in CI, where a skip would hide that the
// backend went untested.
func freshClickHouseDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(clickhouseDSNEnv)
	if dsn == "" {
		msg := clickhouseDSNEnv + " is not set: run `export " + clickhouseDSNEnv + "=$(scripts/clickhouse.sh start)` to run the end-to-end tests on ClickHouse too"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", clickhouseDSNEnv, err)
	}
	db := "catchmap_e2e_" + strings.ToLower(rand.Text()[:12])
	u.Path = "/" + db
	fresh := u.String()
	// Registered before the aggregator starts, so it runs after the
	// aggregator's own cleanup has killed it.
	t.Cleanup(func() { dropClickHouseDatabase(t, dsn, db) })
	return fresh
}

func dropClickHouseDatabase(t *testing.T, dsn, db string) {
	opt, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Errorf("dropping database %s: parsing %s: %v", db, clickhouseDSNEnv, err)
		return
	}
	opt.Auth.Database = "" // the server's default: db itself is going
	conn, err := clickhouse.Open(opt)
	if err != nil {
		t.Errorf("dropping database %s: %v", db, err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Errorf("dropping database %s: %v", db, err)
	}
}
