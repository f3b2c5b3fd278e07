#!/bin/bash
# End to end: the daemon checks real loopback servers, stores results in
# SQLite, alerts a webhook receiver on DOWN and UP, serves the API,
# reloads on SIGHUP (valid and invalid files) and stops cleanly on SIGTERM.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
start_httpd hook --record "$T/hook.jsonl"
DB="$T/agent.db"

write_conf() { # $1: port for "closed", $2: extra monitor section
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
log_level = debug

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 500ms
timeout = 2s

[monitor:loopback]
type = ping
host = 127.0.0.1
interval = 500ms
alerts = none

[monitor:closed]
type = tcp
host = 127.0.0.1
port = $1
interval = 500ms
retries = 0
alerts = hook

$2

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
INI
}
write_conf 1 "[monitor:slow]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 1h"
# The agent raises its soft limit of open files to the hard limit (every
# check in flight holds one): start it with a low soft limit.
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] || [ "$hard_nofile" -gt 512 ] && ulimit -Sn 512
start_agent "$T/agent.ini"
# (Not under valgrind, which keeps descriptors above the soft limit for
# itself and refuses to raise it.)
if [ -z "${WP_VALGRIND:-}" ]; then
	soft=$(awk '/^Max open files/ {print $4}' "/proc/$AGENT_PID/limits")
	hard=$(awk '/^Max open files/ {print $5}' "/proc/$AGENT_PID/limits")
	[ "$soft" = "$hard" ] || fail "open files: soft limit $soft, hard $hard"
fi

# Results land in SQLite.
rows() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1' AND c.ok = $2"; }
has_rows() { [ "$(rows "$1" "$2" 2>/dev/null || echo 0)" -ge "$3" ]; }
wait_until 15 has_rows web 1 2 || fail "web: no UP rows stored"
wait_until 15 has_rows closed 0 2 || fail "closed: no DOWN rows stored"
[ "$(sql "$DB" "SELECT status_code FROM checks c JOIN monitors m ON m.id=c.monitor_id WHERE m.name='web' LIMIT 1")" = 200 ] ||
    fail "status_code 200 stored"
sql "$DB" "SELECT error FROM checks c JOIN monitors m ON m.id=c.monitor_id WHERE m.name='closed' LIMIT 1" |
    grep -qi "refused" || fail "closed: error says refused"
wait_until 15 has_rows loopback 1 1 || fail "ping: no UP rows stored"
ok "checks stored in SQLite (http, tcp, ping)"

# A plugin's measurements reach the store with their unit in the name.
meas() { sql "$DB" "SELECT x.name || '=' || x.value FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'loopback' AND c.ok = 1 ORDER BY c.id, x.name LIMIT 2"; }
[ "$(meas | sed 's/=.*//' | tr '\n' ' ')" = "loss_ratio rtt_seconds " ] ||
    fail "ping's measurements not stored as loss_ratio, rtt_seconds: $(meas)"
meas | grep -qx 'loss_ratio=0.0' || fail "an UP ping lost nothing: $(meas)"
ok "ping's rtt and loss stored as rtt_seconds and loss_ratio"

# The DOWN alert reaches the receiver, once.
wait_until 15 grep -q '"state": *"down"' "$T/hook.jsonl" || fail "no DOWN webhook"
grep '"state": *"down"' "$T/hook.jsonl" | grep -q '"monitor": *"closed"' ||
    fail "webhook names the monitor"
grep '"state": *"down"' "$T/hook.jsonl" | grep -q '"previous_state": *"pending"' ||
    fail "webhook previous_state pending"
ok "DOWN webhook delivered"

# The API.
[ "$(curl -fsS "$API/healthz")" = "ok" ] || fail "/healthz"
curl -fsS "$API/api/monitors" >"$T/monitors.json" || fail "/api/monitors"
grep -q '"name": *"web"' "$T/monitors.json" || fail "monitors lists web"
grep -Eq '"name": *"closed"[^}]*"state": *"down"' "$T/monitors.json" ||
    fail "closed is down in /api/monitors: $(cat "$T/monitors.json")"
curl -fsS "$API/api/monitor" >"$T/opmon.json" || fail "/api/monitor"
for k in running succeeded failed timed_out operations; do
	grep -q "\"$k\"" "$T/opmon.json" || fail "/api/monitor lacks $k"
done
curl -fsS "$API/metrics" >"$T/metrics.txt" || fail "/metrics"
grep -q '^watchpost_monitor_up{monitor="web",type="http"} 1$' "$T/metrics.txt" ||
    fail "metrics: web up"
grep -q '^watchpost_monitor_up{monitor="closed",type="tcp"} 0$' "$T/metrics.txt" ||
    fail "metrics: closed down"
ok "API: healthz, monitors, monitor, metrics"

# Reload: "closed" now points at a listening port (changed), "slow" is
# removed, "fresh" is added; "web" is untouched.
slow_before=$(rows slow 1)
write_conf "$web_PORT" "[monitor:fresh]
type = tcp
host = 127.0.0.1
port = $web_PORT
interval = 500ms"
kill -HUP "$AGENT_PID"
wait_until 10 grep -q "1 added, 1 changed, 1 removed, 2 unchanged" "$T/agent.log" ||
    fail "reload summary"
wait_until 15 grep -q '"state": *"up"' "$T/hook.jsonl" || fail "no UP webhook after fix"
grep '"state": *"up"' "$T/hook.jsonl" | grep -q '"previous_state": *"down"' ||
    fail "UP webhook previous_state down"
wait_until 10 has_rows fresh 1 1 || fail "added monitor runs"
[ "$(rows slow 1)" -eq "$slow_before" ] || fail "removed monitor still runs"
[ "$(grep -c '"state": *"down"' "$T/hook.jsonl")" -eq 1 ] || fail "DOWN sent once"
ok "SIGHUP applies add/change/remove; DOWN then UP alerts"

# An invalid file is rejected whole; the running set stays.
cp "$T/agent.ini" "$T/agent.ini.good"
printf '\n[monitor:broken]\ntype = tcp\nport = x\n' >>"$T/agent.ini"
kill -HUP "$AGENT_PID"
wait_until 10 grep -q "reload rejected" "$T/agent.log" || fail "bad reload not rejected"
grep -q "agent.ini:[0-9]*: " "$T/agent.log" || fail "reload errors as FILE:LINE"
n=$(rows web 1)
wait_until 10 has_rows web 1 $((n + 2)) || fail "web stopped after a bad reload"
ok "invalid reload rejected, agent keeps running"

# SIGTERM: exit 0 with everything written.
stop_agent
[ "$(sql "$DB" "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
after=$(sql "$DB" "SELECT count(*) FROM checks")
[ "$after" -gt 0 ] || fail "rows after stop"
grep -q "stopped" "$T/agent.log" || fail "clean stop logged"
ok "SIGTERM: exit 0, database intact ($after checks)"

# Restart: state and outbox come back; nothing is repeated or forgotten.
hooks_before=$(wc -l <"$T/hook.jsonl")
cp "$T/agent.ini.good" "$T/agent.ini"
start_agent "$T/agent.ini"
n=$(rows closed 1)
wait_until 15 has_rows closed 1 $((n + 2)) || fail "restarted agent checks"
sleep 1
[ "$(wc -l <"$T/hook.jsonl")" -eq "$hooks_before" ] ||
    fail "restart repeated an alert: $(tail -1 "$T/hook.jsonl")"
curl -fsS "$API/api/monitors" | grep -Eq '"name": *"closed"[^}]*"state": *"up"' ||
    fail "state after restart"
stop_agent
ok "restart keeps state: no alert repeated"
