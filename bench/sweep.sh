#!/usr/bin/env bash
# Sweep send rate and loss: catchmap's sweep engine (catchmap catch + sweep
# run) against Debian's zmap (icmp_echoscan) on the same veth pair, with no
# delay link, at the same rate and target count, in one run.
#
# Two namespaces joined by a veth pair: "send" holds the anycast address
# 198.51.100.53 on lo (the source of both tools' probes, where the replies
# come back); "answer" answers ICMP for all of 10.0.0.0/8 (a local route on
# lo). Each tool probes N addresses of 10/8: zmap N random ones
# (-w 10.0.0.0/8 -n N; its default blocklist excludes 10/8, hence -b with
# an empty file), catchmap the .1 of N /24s. The send rate is read the same
# way for both, from the answering side's packet counter sampled every
# 10 ms (the middle 90% of the probes); replies caught and lost from each
# tool's own counts.
#
# Usage: bench/sweep.sh [N] [RATE]   (as root; defaults 65536 and 100000)
# Needs: go, zmap, jq, iproute2, curl. Bounded: each tool's run is capped at
# 60 s; traffic stays inside the two namespaces this script makes, which it
# removes on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-65536}
rate=${2:-100000}
for tool in zmap jq curl ip; do
	command -v "$tool" >/dev/null || { echo "sweep.sh: $tool not found: bash scripts/test.sh installs it" >&2; exit 2; }
done
if [[ $(id -u) -ne 0 ]]; then
	echo "sweep.sh: needs root (namespaces, raw sockets, zmap's packet socket)" >&2
	exit 2
fi
if ((n < 1 || n > 65536)); then
	echo "sweep.sh: N=$n: 1 to 65536 (one per /24 of 10/8)" >&2
	exit 2
fi

tag=cmswb$$
S=$tag-send
A=$tag-answer
tmp=$(mktemp -d)
catcher=
parked=
cleanup() {
	[[ -n $catcher ]] && kill "$catcher" 2>/dev/null && wait "$catcher" 2>/dev/null
	[[ -n $parked ]] && kill "$parked" 2>/dev/null
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$root" && go build -o "$tmp/" ./cmd/catchmap)

ip netns add "$S"
ip netns add "$A"
for ns in "$S" "$A"; do
	# No IPv6: its router solicitations would count as traffic on the link.
	ip netns exec "$ns" sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
done
ip link add "$tag-s" type veth peer name "$tag-a"
ip link set "$tag-s" netns "$S"
ip link set "$tag-a" netns "$A"
ip -n "$S" addr add 192.0.2.1/30 dev "$tag-s"
ip -n "$A" addr add 192.0.2.2/30 dev "$tag-a"
ip -n "$S" link set "$tag-s" up
ip -n "$A" link set "$tag-a" up
ip -n "$S" addr add 198.51.100.53/32 dev lo
ip -n "$S" route add 10.0.0.0/8 via 192.0.2.2
ip -n "$A" route add local 10.0.0.0/8 dev lo
ip -n "$A" route add 198.51.100.53/32 via 192.0.2.1
peer_mac=$(ip -n "$A" -o link show "$tag-a" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
# Resolve the neighbour once, so that neither tool's first probes wait on ARP.
ip netns exec "$S" ip neigh replace 192.0.2.2 lladdr "$peer_mac" dev "$tag-s"

# sample FILE: write "time packets" of the answering side's received
# packets every 10 ms until killed, with no fork per sample (a fork a
# sample slows zmap's sender down by half on two CPUs): /proc/PID/net/dev
# shows the devices of PID's namespace, so a process parked in it lets
# bash read the counter, and read -t on a pipe nobody writes is the sleep.
ip netns exec "$A" sleep 600 &
parked=$!
sample() {
	local line name rx_bytes rx_packets rest
	exec 9<> <(:)
	while :; do
		while read -r line; do
			if [[ $line == "$tag-a:"* ]]; then
				read -r name rx_bytes rx_packets rest <<<"$line"
				echo "$EPOCHREALTIME $rx_packets"
			fi
		done </proc/"$parked"/net/dev
		read -r -t 0.01 -u 9 || true
	done >"$1"
}
# wire_rate FILE N: packets per second while the middle 90% of N probes
# crossed the link (5% to 95%, interpolated between samples), the sending
# time that rate makes for N, and the packets counted in all.
wire_rate() {
	awk -v n="$2" 'NR == 1 {base = $2}
		{c = $2 - base
		 if (!t5 && c >= 0.05 * n) t5 = pt + (0.05 * n - pc) / (c - pc) * ($1 - pt)
		 if (!t95 && c >= 0.95 * n) t95 = pt + (0.95 * n - pc) / (c - pc) * ($1 - pt)
		 pt = $1; pc = c}
		END {if (t95 > t5) printf "%.0f %.3f %d\n", 0.9 * n / (t95 - t5), (t95 - t5) / 0.9, pc; else print "0 0 " pc}' "$1"
}

# zmap.
: >"$tmp/empty"
echo 10.0.0.0/8 >"$tmp/allow"
sample "$tmp/zmap.samples" &
sampler=$!
sleep 0.1
timeout 60 ip netns exec "$S" zmap -q -M icmp_echoscan -i "$tag-s" -S 198.51.100.53 -G "$peer_mac" \
	-b "$tmp/empty" -w "$tmp/allow" -n "$n" -r "$rate" -c 3 -m "$tmp/zmap.json" -o "$tmp/zmap.out" 2>"$tmp/zmap.log"
sleep 0.1
kill "$sampler"
wait "$sampler" 2>/dev/null || true
read -r z_rate z_secs z_wire < <(wire_rate "$tmp/zmap.samples" "$n")
z_sent=$(jq .total_sent "$tmp/zmap.json")
z_hits=$(jq .success_unique "$tmp/zmap.json")

# catchmap: a catcher at the sending namespace, driven by sweep run.
export CATCHMAP_CATCH_TOKEN=bench-sweep-token
ip netns exec "$S" "$tmp/catchmap" catch --listen 127.0.0.1:8100 --site bench --anycast 198.51.100.53 \
	--max-rate "$rate" --allow 10.0.0.0/8 >"$tmp/catch.log" 2>&1 &
catcher=$!
for _ in $(seq 100); do
	ip netns exec "$S" curl -sf http://127.0.0.1:8100/healthz >/dev/null && break
	sleep 0.1
done
for i in $(seq 0 $((n - 1))); do echo "10.$((i / 256)).$((i % 256)).1"; done >"$tmp/hitlist"
sample "$tmp/catchmap.samples" &
sampler=$!
sleep 0.1
timeout 60 ip netns exec "$S" "$tmp/catchmap" sweep run --hitlist "$tmp/hitlist" --catcher http://127.0.0.1:8100 \
	--from bench --rate "$rate" --cooldown 3s --contact 'catchmap bench/sweep.sh' \
	-o "$tmp/catchmap.ndjson" --summary "$tmp/catchmap.json" 2>"$tmp/sweep.log"
sleep 0.1
kill "$sampler"
wait "$sampler" 2>/dev/null || true
read -r c_rate c_secs c_wire < <(wire_rate "$tmp/catchmap.samples" "$n")
c_sent=$(jq .sent "$tmp/catchmap.json")
c_hits=$(jq '.caught.bench // 0' "$tmp/catchmap.json")
c_drops=$(jq .kernel_drops "$tmp/catchmap.json")
c_stamped=$(jq -r '.sites[0] | "\(.sent) \(.started) \(.finished)"' "$tmp/catchmap.json")

lost() { awk -v s="$1" -v h="$2" 'BEGIN {printf "%.3f", s ? 100 * (s - h) / s : 0}'; }
per_sec() { awk -v h="$1" -v t="$2" 'BEGIN {printf "%.0f", (t > 0 ? h / t : 0)}'; }
ratio=$(awk -v a="$c_rate" -v b="$z_rate" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')

echo "### ICMP echo sweep of $n addresses of 10/8 at $rate packets/s on one veth pair, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| tool | sent | send rate on the wire (pps) | sending s | replies caught | caught/s | lost % |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| zmap 2.1 icmp_echoscan | $z_sent | $z_rate | $z_secs | $z_hits | $(per_sec "$z_hits" "$z_secs") | $(lost "$z_sent" "$z_hits") |"
echo "| catchmap catch + sweep run | $c_sent | $c_rate | $c_secs | $c_hits | $(per_sec "$c_hits" "$c_secs") | $(lost "$c_sent" "$c_hits") |"
echo
echo "catchmap / zmap send rate = **${ratio}x**; catchmap kernel drops $c_drops; the sender's own stamps (sent, started, finished): $c_stamped"
echo "(target: at least 100000 packets/s with under 0.1% lost)"
echo
echo "zmap: \`zmap -q -M icmp_echoscan -i IF -S 198.51.100.53 -G PEER_MAC -b EMPTY -w 10.0.0.0/8 -n $n -r $rate -c 3\`"
echo "catchmap: \`catchmap catch --site bench --anycast 198.51.100.53 --max-rate $rate --allow 10.0.0.0/8\`, \`catchmap sweep run --from bench --rate $rate --cooldown 3s\`"
