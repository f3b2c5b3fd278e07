#!/bin/bash
# bench/scale-smoke.sh [N] -- N TCP monitors (default 10000) at 10 s against
# a loopback listener: time until the API answers, checks stored after 30 s,
# RSS, threads, CPU, and the time to apply a 1% change on SIGHUP.
# Loopback only; bounded to about 45 s.  Run from a built tree (./bootstrap).
set -euo pipefail
N=${1:-10000}
top=$(cd "$(dirname "$0")/.." && pwd)
B="$top/_build"
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
"$B/tests/testhttpd" --port 0 >"$T/httpd.out" 2>/dev/null &
for i in $(seq 50); do grep -q PORT "$T/httpd.out" && break; sleep 0.1; done
port=$(sed -n 's/^PORT //p' "$T/httpd.out")
gen() { # $1: port of the changed 1%
	printf '[agent]\ndatabase = bench.db\nlisten = 127.0.0.1:0\nlog_level = info\n'
	for i in $(seq "$N"); do
		p=$port
		[ $((i % 100)) -eq 0 ] && p=$1
		printf '[monitor:m%d]\ntype = tcp\nhost = 127.0.0.1\nport = %s\ninterval = 10s\n' "$i" "$p"
	done
}
gen "$port" >"$T/bench.ini"
t0=$(date +%s%N)
"$B/watchpost" -c "$T/bench.ini" -P "$B/plugins/.libs" 2>"$T/agent.log" &
pid=$!
until grep -q "listening on" "$T/agent.log"; do sleep 0.005; done
api=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$T/agent.log")
until curl -fsS "http://$api/healthz" >/dev/null 2>&1; do sleep 0.005; done
t1=$(date +%s%N)
sleep 30
rows=$(sqlite3 "$T/bench.db" "SELECT count(*) FROM checks")
read -r utime stime <<<"$(awk '{print $14, $15}' /proc/$pid/stat)"
hz=$(getconf CLK_TCK)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
thr=$(awk '/Threads/ {print $2}' /proc/$pid/status)
gen 1 >"$T/bench.ini"
kill -HUP $pid
for i in $(seq 100); do grep -q "reload applied" "$T/agent.log" && break; sleep 0.1; done
reload=$(sed -n 's/.*reload applied in \([0-9.]*\) ms.*/\1/p' "$T/agent.log")
kill -TERM $pid; wait $pid || true
echo "monitors=$N api_ready_ms=$(( (t1 - t0) / 1000000 )) checks_in_30s=$rows" \
    "cpu_s=$(echo "scale=2; ($utime + $stime) / $hz" | bc 2>/dev/null || echo "$utime+$stime ticks")" \
    "peak_rss_kb=$rss threads=$thr reload_1pct_ms=$reload"
