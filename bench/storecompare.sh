#!/usr/bin/env bash
# SQLite beside ClickHouse in one run: the same N results appended through
# store.Append from several goroutines (as concurrent uploads reach the
# aggregator), then each store's Compact (the rollup the aggregator makes
# every minute; ClickHouse's waits out a 1-minute margin first, since the
# whole data set arrives late), then a catchment map of all N and a diff of
# the two halves, computed as the maps API does (store summaries into
# maps.Builder), on each; the two stores' maps must be the same bytes.
# Prints a Markdown table. Starts the local test ClickHouse
# (scripts/clickhouse.sh) unless CATCHMAP_CLICKHOUSE_DSN is set, and stops
# it again if it started it. Traffic stays on 127.0.0.1.
#
# Usage: bench/storecompare.sh   (from anywhere)
#   CATCHMAP_BENCH_N      results (default 1000000, at most 10000000)
#   CATCHMAP_BENCH_BATCH  records per Append (default 100000)
#   CATCHMAP_BENCH_WRITERS  concurrent Appends (default 4)
#   CATCHMAP_BENCH_STORES  sqlite,clickhouse (default both)
#   BENCH_TIMEOUT         bound on the whole run (default 60m)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
started=
if [[ -z ${CATCHMAP_CLICKHOUSE_DSN:-} ]]; then
	CATCHMAP_CLICKHOUSE_DSN=$("$root/scripts/clickhouse.sh" start)
	export CATCHMAP_CLICKHOUSE_DSN
	started=1
fi
trap 'if [[ -n $started ]]; then "$root/scripts/clickhouse.sh" stop; fi' EXIT

cd "$root"
go test -run '^$' -bench '^BenchmarkStoreCompare$' -benchtime 1x -timeout "${BENCH_TIMEOUT:-60m}" \
	./aggregator/store/clickhouse/
