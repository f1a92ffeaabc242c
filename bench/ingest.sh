#!/usr/bin/env bash
# Aggregator ingest throughput beside the raw insert rate of the same SQLite
# driver, settings, schema and indexes, in one run (ratios hold on a shared
# machine where absolute rates do not):
#   raw:  database/sql prepared INSERT, 10k-row transactions;
#   http: a real aggregator on 127.0.0.1:0, 4 concurrent probes uploading
#         gzip NDJSON batches of 1,000 records through POST /api/v1/results.
# Bounded: BENCH_TIMEOUT (default 10m) for the whole run; traffic stays on
# 127.0.0.1. Prints a Markdown table.
#
# Usage: bench/ingest.sh [ingestbench flags]   (from anywhere)
#   -clickhouse DSN  also upload into an aggregator on ClickHouse, e.g.
#                    clickhouse://default@127.0.0.1:19000/ingestbench
#                    (a new database, left filled: drop it after)
#   BENCH_RECORDS (default 500000), BENCH_SENDERS (4), BENCH_BATCH (1000)
# Needs: go (and a C compiler for go-sqlite3).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/ingestbench" ./bench/ingestbench)
"$tmp/ingestbench" -dir "$tmp" \
	-records "${BENCH_RECORDS:-500000}" -senders "${BENCH_SENDERS:-4}" -batch "${BENCH_BATCH:-1000}" \
	-timeout "${BENCH_TIMEOUT:-10m}" "$@"
