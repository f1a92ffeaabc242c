package e2e

import (
	"path/filepath"
	"testing"

	"github.com/catchmap/catchmap/aggregator/store/clickhouse/chtest"
)

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
		return []string{"--store", chtest.FreshDSN(t, "catchmap_e2e")}
	}
	t.Fatalf("unknown store %q", s)
	return nil
}
