#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine, as CI runs it (.ci/run calls this).
# It installs what the tests need (Debian packages, Go modules), checks formatting, vet and
# staticcheck, builds the static agents (probe, catch) for both architectures, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

# Debian packages used by tests and benchmarks:
#   gcc: cgo (SQLite, H3); chromium: the web UI's browser tests; bird2, iproute2: BGP tests and the lab;
#   clickhouse-server/-client: the ClickHouse store; bzip2: Atlas fixtures; dnsperf, fping, zmap: benchmarks' references;
#   jq: the sweep benchmark reads JSON; bind9, nsd, unbound, dnsdist: the probe's tests against real DNS servers;
#   nftables: its ICMP firewall test.
pkgs=(gcc libc6-dev chromium bird2 iproute2 clickhouse-server clickhouse-client bzip2 dnsperf fping zmap jq bind9-dnsutils
	bind9 nsd unbound dnsdist nftables)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test.sh: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
		exit 2
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

go mod download
command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

echo "== gofmt"
unformatted=$(find . -name '*.go' -not -path './.git/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then echo "gofmt: these files need formatting:"; echo "$unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== static probe and catch binaries (no cgo), linux/amd64 and linux/arm64"
for arch in amd64 arm64; do
	for cmd in catchmap-probe catchmap-catch; do CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -o /dev/null ./cmd/$cmd; done
done
echo "== ClickHouse for the store tests (a local server on 127.0.0.1, stopped on exit)"
CATCHMAP_CLICKHOUSE_DSN="$(scripts/clickhouse.sh start)"
export CATCHMAP_CLICKHOUSE_DSN
trap 'scripts/clickhouse.sh stop' EXIT
echo "== go test"
go test -count=1 -timeout 20m ./...
