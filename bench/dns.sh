#!/usr/bin/env bash
# DNS queries per second: dnsperf against catchmap's dns method, both asking
# IN TXT (dnsperf sends class IN only) with EDNS of ONE loopback server
# started here, each with 100 queries outstanding.
# Bounded: each tool runs BENCH_ROUNDS (default 2) times BENCH_SECONDS (default
# 10); traffic stays on 127.0.0.1.
#
# Usage: bench/dns.sh            (from the module root or anywhere)
# Needs: go, dnsperf (Debian package dnsperf).
set -euo pipefail

secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
conc=${BENCH_CONCURRENCY:-100} # as many outstanding queries as dnsperf -q (its default)
root=$(cd "$(dirname "$0")/.." && pwd)
command -v dnsperf >/dev/null || { echo "dns.sh: dnsperf not found: apt-get install dnsperf" >&2; exit 2; }

tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/catchbench" ./bench/catchbench)

# The server stops by itself after both runs plus a margin, should this
# script be killed before its trap runs.
"$tmp/catchbench" serve -addr-file "$tmp/addr" -for "$((2 * rounds * secs + 60))s" >/dev/null &
server_pid=$!
for _ in $(seq 100); do # wait up to 10s for the server to serve
	[[ -s $tmp/addr ]] && break
	kill -0 "$server_pid" 2>/dev/null || { echo "dns.sh: the DNS server exited" >&2; exit 1; }
	sleep 0.1
done
[[ -s $tmp/addr ]] || { echo "dns.sh: the DNS server did not start within 10s" >&2; exit 1; }
addr=$(<"$tmp/addr")
port=${addr##*:}

echo "id.bench.test. TXT" >"$tmp/queries"

# The tools take turns, BENCH_ROUNDS times, and each keeps its best round:
# on a shared machine other load comes and goes, and the best round is the
# one it disturbed least.
dnsperf_qps=0 dnsperf_lost=0 catchmap_qps=0 catchmap_failed=0
for round in $(seq "$rounds"); do
	# dnsperf's defaults, spelled out: one socket (-c 1), one sending and one
	# receiving thread (-T 1), 100 queries outstanding (-q). -e adds the EDNS
	# OPT record that catchmap sends (with NSID), so that the server does the
	# same work for both.
	dnsperf -s 127.0.0.1 -p "$port" -d "$tmp/queries" -l "$secs" -c 1 -T 1 -q "$conc" -e >"$tmp/dnsperf.out" 2>&1
	q=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$tmp/dnsperf.out")
	[[ -n $q ]] || { echo "dns.sh: dnsperf gave no result:" >&2; cat "$tmp/dnsperf.out" >&2; exit 1; }
	if ((q > dnsperf_qps)); then
		dnsperf_qps=$q dnsperf_lost=$(awk '/Queries lost:/ {print $3}' "$tmp/dnsperf.out")
	fi

	"$tmp/catchbench" dns -server "$addr" -for "${secs}s" -c "$conc" >"$tmp/catchmap.out"
	q=$(awk '/^answered/ {print $8}' "$tmp/catchmap.out")
	[[ -n $q ]] || { echo "dns.sh: catchbench gave no result:" >&2; cat "$tmp/catchmap.out" >&2; exit 1; }
	if ((q > catchmap_qps)); then
		catchmap_qps=$q catchmap_failed=$(awk '/^answered/ {print $4}' "$tmp/catchmap.out")
	fi
	grep '^first failure' "$tmp/catchmap.out" >&2 || true
	echo "round $round: dnsperf $dnsperf_qps, catchmap $catchmap_qps queries/s (best so far)" >&2
done
ratio=$(awk -v a="$catchmap_qps" -v b="$dnsperf_qps" 'BEGIN {printf "%.2f", a / b}')

echo "### DNS IN TXT on 127.0.0.1: best of $rounds rounds of ${secs}s each, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| tool | queries/s | lost or failed |"
echo "|---|---:|---:|"
echo "| dnsperf -c 1 -T 1 -q $conc -e | $dnsperf_qps | $dnsperf_lost |"
echo "| catchmap dns method ($conc concurrent) | $catchmap_qps | $catchmap_failed |"
echo
echo "catchmap / dnsperf = **${ratio}x** (target >= 0.5x)"
