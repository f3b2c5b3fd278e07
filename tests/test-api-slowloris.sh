#!/bin/bash
# The API stays up under a flood of slow and idle connections from the same
# host (issue 12, item 8): 1,000 clients that send a request one byte a
# second, and 50 that send nothing, hold their connections while /healthz
# and /metrics still answer and checks keep running; the request deadline
# then closes every one of them.  Loopback only; every wait is bounded.
. "$abs_top_srcdir/tests/lib.sh"
SLOWLORIS="$abs_top_builddir/tests/slowloris"
SLOW=1000
IDLE=50

start_httpd web
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 200ms
INI
start_agent "$T/agent.ini"
port=${API##*:}
rows() { sql "$T/agent.db" "SELECT count(*) FROM checks" 2>/dev/null || echo 0; }

"$SLOWLORIS" "$port" "$SLOW" "$IDLE" 30 >"$T/loris.out" 2>"$T/loris.log" &
LORIS_PID=$!
PIDS+=($LORIS_PID)
wait_until 20 grep -q "^OPEN $((SLOW + IDLE))$" "$T/loris.out" ||
    fail "slowloris could not open its connections: $(cat "$T/loris.log")"
rows_before=$(rows)

# While they are all open: /healthz and /metrics answer.  The bound is
# generous (2 s); the latency is reported, not asserted.
: >"$T/times"
for i in $(seq 1 20); do
	out=$(curl -sS --max-time 2 -o "$T/healthz.body" \
	    -w '%{http_code} %{time_total}' "$API/healthz") ||
	    fail "/healthz did not answer with $SLOW slow and $IDLE idle connections open (try $i)"
	[ "${out% *}" = 200 ] && [ "$(cat "$T/healthz.body")" = ok ] ||
	    fail "/healthz answered $out"
	echo "${out#* }" >>"$T/times"
done
curl -sS --max-time 2 "$API/metrics" >"$T/metrics.txt" ||
    fail "/metrics did not answer under the flood"
grep -q '^watchpost_monitor_up{monitor="web",type="http"} 1$' "$T/metrics.txt" ||
    fail "/metrics: web is not up"
grep -q '^CLOSED' "$T/loris.out" &&
    fail "connections were closed before the checks: $(tail -1 "$T/loris.out")"
ok "/healthz (20 of 20) and /metrics answer with $SLOW slow and $IDLE idle connections open"
sort -n "$T/times" | awk '{ t[NR] = $1 * 1000 }
    END { printf "# /healthz latency under the flood: median %.1f ms, max %.1f ms (%d requests)\n",
        t[int((NR + 1) / 2)], t[NR], NR }'

# Checks go on.
more_rows() { [ "$(rows)" -gt "$((rows_before + 5))" ]; }
wait_until 10 more_rows ||
    fail "checks stalled under the flood ($(rows) rows, $rows_before before)"
ok "checks keep running under the flood"

# A slow client never finishes its request, and each byte resets an idle
# timeout: only the whole-request deadline (10 s) closes these.
wait_until 20 grep -q "^CLOSED slow=$SLOW idle=$IDLE$" "$T/loris.out" ||
    fail "slow connections not closed by the deadline: $(tail -1 "$T/loris.out")"
grep -q "api: closed [0-9]* connection(s) that sent no complete request within 10 s" \
    "$T/agent.log" || fail "the cut is not logged"
[ "$(curl -sS --max-time 2 "$API/healthz")" = ok ] || fail "/healthz after the flood"
ok "the request deadline closed all $((SLOW + IDLE)) slow and idle connections"

stop_agent
