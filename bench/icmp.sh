#!/usr/bin/env bash
# ICMP sweep of 1,000 loopback addresses (127.0.0.1 to 127.0.3.232): wall
# time of catchmap's sweeper (probe.Sweep) against fping -c1 -q -i 0 on the
# same list. Bounded: every run is capped at 60s; traffic stays in 127.0.0.0/8.
#
# Usage: bench/icmp.sh   (as root, or with CAP_NET_RAW, for raw ICMP sockets)
# Needs: go, fping.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
command -v fping >/dev/null || { echo "icmp.sh: fping not found: apt-get install fping" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
	echo "icmp.sh: needs root (raw ICMP sockets for both tools, and fping -i 0)" >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/catchbench" ./bench/catchbench)

for i in $(seq 1 1000); do echo "127.0.$((i / 256)).$((i % 256))"; done >"$tmp/list"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

# fping exits 1 when some target did not answer; the count says how many did.
t0=$(now)
timeout 60 fping -c1 -q -i 0 -f "$tmp/list" 2>"$tmp/fping.out" || true
t1=$(now)
fping_s=$(elapsed "$t0" "$t1")
fping_ok=$(grep -c '1/1/0%' "$tmp/fping.out" || true)

# Unpaced, like fping -i 0; then at the sweeper's default pacing (1ms).
timeout 60 "$tmp/catchbench" sweep -list "$tmp/list" -interval 1us >"$tmp/fast.out"
timeout 60 "$tmp/catchbench" sweep -list "$tmp/list" >"$tmp/paced.out"
fast_s=$(awk '{print $6}' "$tmp/fast.out")
fast_ok=$(awk '{print $4}' "$tmp/fast.out")
paced_s=$(awk '{print $6}' "$tmp/paced.out")
paced_ok=$(awk '{print $4}' "$tmp/paced.out")
ratio=$(awk -v a="$fast_s" -v b="$fping_s" 'BEGIN {printf "%.2f", a / b}')

echo "### ICMP echo sweep of 1,000 loopback addresses, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| tool | wall s | replied |"
echo "|---|---:|---:|"
echo "| fping -c1 -q -i 0 | $fping_s | $fping_ok |"
echo "| catchmap probe.Sweep, interval 1us | $fast_s | $fast_ok |"
echo "| catchmap probe.Sweep, default interval 1ms | $paced_s | $paced_ok |"
echo
echo "catchmap (1us) / fping = **${ratio}x** (target <= 2x)"
