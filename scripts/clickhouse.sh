#!/usr/bin/env bash
# clickhouse.sh starts (or stops) a private ClickHouse server for catchmap's
# tests and benchmarks: its own config, data and log directory, listening on
# 127.0.0.1 only, on its own ports, so it never meets a system ClickHouse.
#
#   scripts/clickhouse.sh start   install if missing, start, wait for SELECT 1,
#                                 write the DSN to $DIR/dsn and print it
#   scripts/clickhouse.sh dsn     print the DSN of the running server
#   scripts/clickhouse.sh stop    stop it (data stays in $DIR/data)
#
# start is idempotent: with our server already answering it only prints the
# DSN. Typical use:
#
#   export CATCHMAP_CLICKHOUSE_DSN=$(scripts/clickhouse.sh start)
#   go test ./aggregator/store/clickhouse/
#   scripts/clickhouse.sh stop
#
# Environment (all optional):
#   CATCHMAP_CLICKHOUSE_DIR        work directory (default ${TMPDIR:-/tmp}/catchmap-clickhouse)
#   CATCHMAP_CLICKHOUSE_TCP_PORT   native protocol port (default 19000)
#   CATCHMAP_CLICKHOUSE_HTTP_PORT  HTTP port, unused by catchmap but always opened (default 18123)
#   CATCHMAP_CLICKHOUSE_WAIT       seconds to wait for the server to answer (default 60)
set -euo pipefail

DIR=${CATCHMAP_CLICKHOUSE_DIR:-${TMPDIR:-/tmp}/catchmap-clickhouse}
TCP_PORT=${CATCHMAP_CLICKHOUSE_TCP_PORT:-19000}
HTTP_PORT=${CATCHMAP_CLICKHOUSE_HTTP_PORT:-18123}
WAIT=${CATCHMAP_CLICKHOUSE_WAIT:-60}
PIDFILE=$DIR/clickhouse.pid
DSNFILE=$DIR/dsn

die() {
	echo "clickhouse.sh: $*" >&2
	exit 1
}

dsn() { echo "clickhouse://default@127.0.0.1:$TCP_PORT/default"; }

# running: our server's process is alive.
running() {
	[[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

# answers: SELECT 1 returns 1, over the native port the tests use.
answers() {
	[[ $(timeout 5 clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" --connect_timeout 2 -q 'SELECT 1' 2>/dev/null) == 1 ]]
}

# port_busy: something listens on 127.0.0.1:$1.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

install() {
	command -v clickhouse-server >/dev/null && return 0
	[[ $(id -u) == 0 ]] || die "clickhouse-server is not installed: run as root, or apt-get install clickhouse-server clickhouse-client"
	echo "clickhouse.sh: installing clickhouse-server" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q clickhouse-server clickhouse-client >&2; then
		apt-get update -q >&2
		apt-get install -y -q clickhouse-server clickhouse-client >&2 ||
			die "apt-get install clickhouse-server failed: see the messages above"
	fi
}

write_config() {
	mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/log"
	cat >"$DIR/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/log/clickhouse-server.log</log>
        <errorlog>$DIR/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$HTTP_PORT</http_port>
    <tcp_port>$TCP_PORT</tcp_port>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
EOF
	cat >"$DIR/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

start() {
	if running; then
		answers || die "the server in $DIR (pid $(cat "$PIDFILE")) runs but does not answer on 127.0.0.1:$TCP_PORT: run $0 stop, then start"
		dsn | tee "$DSNFILE"
		return 0
	fi
	install
	for p in "$TCP_PORT" "$HTTP_PORT"; do
		port_busy "$p" && die "port 127.0.0.1:$p is taken by another program: set CATCHMAP_CLICKHOUSE_TCP_PORT / CATCHMAP_CLICKHOUSE_HTTP_PORT"
	done
	write_config
	rm -f "$DSNFILE"
	# setsid: the server outlives this script and is not killed by a
	# terminal's ^C meant for the tests. Without job control a background
	# command is no group leader, so setsid execs in place and $! is the
	# server's own pid.
	setsid clickhouse-server --config-file="$DIR/config.xml" >"$DIR/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	local deadline=$((SECONDS + WAIT))
	until answers; do
		if ! running; then
			tail -n 20 "$DIR/log/stdout.log" "$DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
			die "clickhouse-server exited during start-up: see $DIR/log"
		fi
		((SECONDS < deadline)) || die "clickhouse-server did not answer SELECT 1 within ${WAIT}s: see $DIR/log; then $0 stop"
		sleep 0.1
	done
	dsn | tee "$DSNFILE"
}

stop() {
	if ! running; then
		rm -f "$PIDFILE" "$DSNFILE"
		return 0
	fi
	local pid deadline=$((SECONDS + 30))
	pid=$(cat "$PIDFILE")
	kill -TERM "$pid"
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "clickhouse.sh: clickhouse-server (pid $pid) ignored SIGTERM for 30s: killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	rm -f "$PIDFILE" "$DSNFILE"
}

case ${1:-} in
start) start ;;
stop) stop ;;
dsn)
	running && [[ -f $DSNFILE ]] || die "no server running in $DIR: run $0 start"
	cat "$DSNFILE"
	;;
*) die "usage: $0 start|stop|dsn" ;;
esac
