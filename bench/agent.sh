#!/usr/bin/env bash
# Probe agent footprint: peak RSS and CPU share of one core of the static
# catchmap-probe (CGO_ENABLED=0) running a plan of 1,000 DNS targets at a 60s
# interval (target: RSS <= 40 MB, CPU < 5% of a core).
#
# What runs, all on 127.0.0.1: a DNS server that answers TXT for every name
# (bench/catchbench serve); a real `catchmap serve` with a temporary SQLite
# database; one probe registered with `catchmap probes add`; a plan of 1,000
# distinct entries (same server, distinct qnames t0001.bench.test. ...)
# loaded with `catchmap targets put`; then catchmap-probe against it.
# While the agent runs, /proc/PID/status (VmRSS, VmHWM) is read every second;
# CPU is utime+stime from /proc/PID/stat over the steady part (after the
# warm-up), as a share of one core.
#
# Usage: bench/agent.sh [DURATION_SECONDS]   (default 180: three intervals)
#   BENCH_AGENT_WARMUP  seconds left out of the CPU figure (default 20, at
#                       most a third of the run)
#   BENCH_AGENT_MAX_RATE  the agent's --max-rate (default 50; 1,000 targets
#                       a minute need at least 17)
# Needs: go, a C compiler (for catchmap's SQLite), curl.
# Bounded: every process started here stops by itself DURATION+120s after the
# start at the latest, and is stopped on exit.
set -euo pipefail

dur=${1:-180}
[[ $dur =~ ^[0-9]+$ ]] && ((dur >= 10 && dur <= 3600)) || {
	echo "agent.sh: duration must be whole seconds from 10 to 3600, got '$dur'" >&2
	exit 2
}
warmup=${BENCH_AGENT_WARMUP:-20}
((warmup > dur / 3)) && warmup=$((dur / 3))
((warmup < 1)) && warmup=1
max_rate=${BENCH_AGENT_MAX_RATE:-50}
ntargets=1000
root=$(cd "$(dirname "$0")/.." && pwd)
command -v curl >/dev/null || { echo "agent.sh: curl not found: apt-get install curl" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
watchdog=
cleanup() {
	local p
	if [[ -n $watchdog ]]; then
		pkill -P "$watchdog" sleep 2>/dev/null || true # its sleep, then itself
		kill "$watchdog" 2>/dev/null || true
		wait "$watchdog" 2>/dev/null || true
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for FILE PATTERN PID WHAT: up to 30s for PATTERN to show in FILE while
# PID lives; prints the first match.
wait_for() {
	local m
	for _ in $(seq 300); do
		if m=$(grep -o -m1 "$2" "$1" 2>/dev/null); then
			echo "$m"
			return 0
		fi
		kill -0 "$3" 2>/dev/null || { echo "agent.sh: $4 exited:" >&2; cat "$1" >&2; return 1; }
		sleep 0.1
	done
	echo "agent.sh: $4 did not start within 30s:" >&2
	cat "$1" >&2
	return 1
}

(cd "$root" && go build -o "$tmp/catchmap" ./cmd/catchmap &&
	go build -o "$tmp/catchbench" ./bench/catchbench &&
	CGO_ENABLED=0 go build -o "$tmp/catchmap-probe" ./cmd/catchmap-probe)

life=$((dur + 120)) # every helper stops by itself even if this script is killed
"$tmp/catchbench" serve -addr-file "$tmp/dnsaddr" -for "${life}s" >/dev/null &
pids+=($!)
dns_addr=$(wait_for "$tmp/dnsaddr" '127\.0\.0\.1:[0-9]*' "${pids[-1]}" "the DNS server")

CATCHMAP_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export CATCHMAP_ADMIN_TOKEN
timeout "$life" "$tmp/catchmap" serve --listen 127.0.0.1:0 --db "$tmp/agg.db" 2>"$tmp/serve.log" &
pids+=($!)
url=$(wait_for "$tmp/serve.log" 'url=http://127\.0\.0\.1:[0-9]*' "${pids[-1]}" "catchmap serve")
CATCHMAP_AGGREGATOR=${url#url=}
export CATCHMAP_AGGREGATOR

token=$("$tmp/catchmap" probes add --name agentbench 2>/dev/null | awk '/^token:/ {print $2}')
[[ -n $token ]] || { echo "agent.sh: catchmap probes add gave no token" >&2; exit 1; }

{
	echo '{"targets": ['
	for i in $(seq 1 "$ntargets"); do
		sep=,
		((i == ntargets)) && sep=
		printf '{"name": "agent-%04d", "target": "%s", "method": "dns", "qname": "t%04d.bench.test.", "interval": "60s", "timeout": "2s"}%s\n' \
			"$i" "$dns_addr" "$i" "$sep"
	done
	echo ']}'
} >"$tmp/plan.json"
"$tmp/catchmap" targets put "$tmp/plan.json" >/dev/null

# The probe's own process, not a timeout wrapper: its /proc is what we read.
# The script kills it after $dur; the stop below bounds it otherwise.
CATCHMAP_TOKEN=$token "$tmp/catchmap-probe" --aggregator "$CATCHMAP_AGGREGATOR" --name agentbench \
	--spool "$tmp/spool" --allow 127.0.0.0/8 --max-rate "$max_rate" --metrics-listen 127.0.0.1:0 \
	2>"$tmp/probe.log" &
probe=$!
pids+=("$probe")
# A watchdog, should this script be killed before its trap runs.
(sleep "$life" && kill "$probe" 2>/dev/null) </dev/null >/dev/null 2>&1 &
watchdog=$!
metrics=$(wait_for "$tmp/probe.log" 'addr=127\.0\.0\.1:[0-9]*' "$probe" "catchmap-probe")
metrics=${metrics#addr=}

hz=$(getconf CLK_TCK)
# ticks: utime+stime of the probe; fields counted after the ")" that ends
# the command name, which may itself hold spaces.
ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$probe/stat"; }
now() { date +%s.%N; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$probe/status"; }

start=$(now)
rss_max=0 hwm=0 t0= c0= t1= c1=
for s in $(seq 1 "$dur"); do
	sleep 1
	kill -0 "$probe" 2>/dev/null || { echo "agent.sh: catchmap-probe exited after ${s}s:" >&2; cat "$tmp/probe.log" >&2; exit 1; }
	r=$(status_kb VmRSS) h=$(status_kb VmHWM)
	((r > rss_max)) && rss_max=$r
	((h > hwm)) && hwm=$h
	if ((s == warmup)); then t0=$(now) c0=$(ticks); fi
	t1=$(now) c1=$(ticks)
done
total_ticks=$c1
metrics_text=$(curl -fsS --max-time 5 "http://$metrics/metrics" || true)
kill -TERM "$probe"
for _ in $(seq 100); do kill -0 "$probe" 2>/dev/null || break; sleep 0.1; done

sum_metric() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d", s}' <<<"$metrics_text"; }
results=$(sum_metric catchmap_probe_results_total)
ok=$(awk '/^catchmap_probe_results_total\{/ && /outcome="ok"/ {s += $2} END {printf "%d", s}' <<<"$metrics_text")
uploaded=$(sum_metric catchmap_probe_uploaded_total)
expected=$((ntargets * dur / 60))

cpu_pct=$(awk -v a="$c0" -v b="$c1" -v ta="$t0" -v tb="$t1" -v hz="$hz" 'BEGIN {printf "%.2f", 100 * (b - a) / hz / (tb - ta)}')
cpu_all=$(awk -v c="$total_ticks" -v hz="$hz" -v ta="$start" -v tb="$t1" 'BEGIN {printf "%.2f", 100 * c / hz / (tb - ta)}')
rss_mb=$(awk -v k="$rss_max" 'BEGIN {printf "%.1f", k / 1024}')
hwm_mb=$(awk -v k="$hwm" 'BEGIN {printf "%.1f", k / 1024}')

echo "### Probe agent, $ntargets DNS targets at interval 60s, ${dur}s run, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| measure | value | target |"
echo "|---|---:|---:|"
echo "| peak RSS (VmHWM) | $hwm_mb MB | <= 40 MB |"
echo "| largest sampled VmRSS | $rss_mb MB | |"
echo "| CPU, steady part (after ${warmup}s) | $cpu_pct % of a core | < 5 % |"
echo "| CPU, whole run | $cpu_all % of a core | |"
echo "| results measured (ok) | $results ($ok) | about $expected by the plan |"
echo "| results the aggregator acknowledged | $uploaded | |"
echo
echo "agent_rss_mb=$hwm_mb agent_cpu_pct=$cpu_pct results=$results ok=$ok uploaded=$uploaded expected=$expected"
