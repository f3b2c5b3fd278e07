#!/bin/bash
# Fault injection, third-party plugins that break their contract, next to
# well-behaved monitors:
#   hang   a blocking check that never returns: its deadline fires, it is
#          reported as timed out, it holds one worker at most, and the
#          other monitors (blocking ones included) keep being checked;
#   twice  completes every operation twice, the second time long after
#          the host freed it: detected, logged, counted, no crash (the
#          ASan build proves no freed memory is read);
#   never  never completes, not even when cancelled: timed out, then
#          reported as abandoned; at most 8 such operations are kept per
#          monitor, after which its checks fail at once (bounded memory).
# Then SIGTERM still stops the agent promptly, with exit 0.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
mkdir "$T/plugins"
cp "$PLUGINS/http.so" "$TEST_PLUGINS/blocking.so" "$TEST_PLUGINS/rogue.so" "$T/plugins/"
PLUGINS="$T/plugins"
DB="$T/agent.db"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:hang]
type = blocking
hang = true
interval = 300ms
timeout = 300ms
retries = 0

[monitor:quick]
type = blocking
interval = 100ms
retries = 0

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 100ms

[monitor:twice]
type = rogue
complete_twice = true
interval = 100ms
retries = 0

[monitor:never]
type = rogue
never = true
interval = 100ms
timeout = 100ms
retries = 0
INI

jget() { sql ":memory:" "SELECT json_extract(readfile('$1'), '$2')"; }
opmon() { curl -fsS "$API/api/monitor" >"$T/opmon.json" && jget "$T/opmon.json" "$1"; }
metric() { curl -fsS "$API/metrics" >"$T/metrics.txt" && grep -F "$1 " "$T/metrics.txt" | sed 's/.* //'; }
at_least() { local v; v=$("${@:2}") && [ -n "$v" ] && [ "${v%.*}" -ge "$1" ]; }
rows() { # NAME [WHERE]
	sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1' ${2:+AND $2}"
}

WATCHPOST_CANCEL_GRACE_MS=200 start_agent "$T/agent.ini"

# hang: timed out at its deadline; later checks fail at once while the
# first is still stuck, so it never holds more than one worker.
wait_until 20 at_least 1 rows hang "reason = 'timeout' AND error LIKE 'timed out after%'" ||
    fail "hang: no timed-out check stored"
wait_until 20 at_least 3 rows hang "reason = 'plugin' AND error LIKE '%still stuck%'" ||
    fail "hang: later checks not failed as stuck"
[ "$(metric 'watchpost_workers{state="stuck"}')" -eq 1 ] ||
    fail "hang: more than one worker stuck: $(grep workers "$T/metrics.txt")"
at_least 1 opmon '$.by_category.check.timed_out' || fail "hang: /api/monitor counts no time-out"
grep -q 'operation "hang" (check) timed out after' "$T/agent.log" || fail "hang: time-out not logged"
q0=$(rows quick "ok = 1")
w0=$(rows web "ok = 1")
wait_until 20 at_least $((q0 + 10)) rows quick "ok = 1" ||
    fail "quick: blocking monitor starved by the hung plugin"
wait_until 20 at_least $((w0 + 10)) rows web "ok = 1" || fail "web: not checked"
[ "$(metric 'watchpost_workers{state="stuck"}')" -eq 1 ] || fail "hang: stuck workers grew"
[ "$(metric 'watchpost_workers{state="total"}')" -le 4 ] ||
    fail "hang: worker pool grew: $(grep workers "$T/metrics.txt")"
ok "hang: timed out, holds one worker, other monitors keep being checked"

# twice: each extra completion is detected and counted; the monitor and
# the agent carry on.
wait_until 20 at_least 5 opmon '$.double_completions' || fail "twice: double completions not counted"
grep -q 'plugin rogue: operation "twice" completed more than once' "$T/agent.log" ||
    fail "twice: double completion not logged"
at_least 5 metric 'watchpost_plugin_protocol_errors_total{kind="double"}' ||
    fail "twice: /metrics has no double completions"
t0=$(rows twice "ok = 1")
wait_until 20 at_least $((t0 + 5)) rows twice "ok = 1" || fail "twice: monitor stopped"
[ "$(rows twice "ok = 0")" -eq 0 ] || fail "twice: a check was not up"
ok "twice: extra completions detected, logged and counted; monitor keeps running"

# never: timed out and cancelled, then abandoned after the grace; at the
# bound of 8, new checks are refused instead of piling up.
wait_until 20 at_least 1 rows never "reason = 'timeout'" || fail "never: no time-out stored"
grep -q 'plugin rogue: operation "never" not completed 200 ms after it was cancelled' \
    "$T/agent.log" || fail "never: abandonment not logged"
wait_until 20 at_least 8 opmon '$.abandoned' || fail "never: abandoned operations not counted"
wait_until 20 at_least 3 rows never "reason = 'plugin' AND error LIKE '%not completed 8 earlier%'" ||
    fail "never: checks not refused at the bound"
n=$(rows never)
wait_until 20 at_least $((n + 10)) rows never || fail "never: monitor stopped"
[ "$(opmon '$.abandoned')" -eq 8 ] || fail "never: abandoned grew past 8: $(opmon '$.abandoned')"
at_least 8 metric 'watchpost_plugin_protocol_errors_total{kind="abandoned"}' ||
    fail "never: /metrics has no abandoned operations"
ok "never: timed out, abandoned, bounded at 8 operations"

[ "$(curl -fsS "$API/healthz")" = ok ] || fail "agent unhealthy"
# SIGTERM: the hung worker is not waited for.
kill -TERM "$AGENT_PID"
wait_until 10 grep -q "stopped" "$T/agent.log" || fail "SIGTERM: agent did not stop within 10 s"
rc=0
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "agent exited $rc after SIGTERM"
ok "SIGTERM with a hung plugin: stopped, exit 0"
