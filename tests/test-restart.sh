#!/bin/bash
# Kill and restart: SIGKILL the daemon in the middle of a write burst with
# an undelivered alert in its outbox, restart it on the same database, and
# check that nothing was lost or repeated: the database is intact, every
# check row committed before the kill is still there, each monitor resumes
# its state (no second DOWN alert for a monitor already down), and each
# incident reaches the receiver exactly once.  Also: the start-up steps
# and the retention job are registered with the async-operation monitor.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
start_httpd victim
start_httpd hook --record "$T/hook.jsonl" --hook-status-file "$T/hook.status"
echo 200 >"$T/hook.status"
DB="$T/agent.db"
export WATCHPOST_ALERT_BACKOFF_MAX_MS=200

{
	cat <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

; A: down from the start (nothing listens on port 1).
[monitor:a]
type = tcp
host = 127.0.0.1
port = 1
interval = 200ms
retries = 0
alerts = hook

; B: up until the victim server is killed.
[monitor:b]
type = tcp
host = 127.0.0.1
port = $victim_PORT
interval = 200ms
retries = 0
alerts = hook

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI
	# The write burst: 200 monitors at 100 ms, about 2,000 rows a second.
	for i in $(seq 200); do
		printf '[monitor:w%d]\ntype = tcp\nhost = 127.0.0.1\nport = %s\ninterval = 100ms\nalerts = none\n' \
		    "$i" "$web_PORT"
	done
} >"$T/agent.ini"

outbox_count() {
	sql "$DB" "SELECT count(*) FROM outbox o JOIN monitors m ON m.id = o.monitor_id WHERE m.name = '$1'" 2>/dev/null
}
# Recorded requests for monitor $1 with state $2, from line $3 on.
hook_lines() {
	tail -n "+${3:-1}" "$T/hook.jsonl" 2>/dev/null |
	    grep "\"monitor\": *\"$1\"" | grep -c "\"state\": *\"$2\"" || true
}

# Phase 1: A goes DOWN and its alert is delivered (and recorded as such).
start_agent "$T/agent.ini"
EXPECT=down wait_until 15 is state_of a || fail "a did not go down"
EXPECT=1 wait_until 15 is hook_lines a down || fail "a's alert not delivered"
EXPECT=0 wait_until 15 is outbox_count a || fail "a's delivery not recorded"
EXPECT=up wait_until 15 is state_of b || fail "b did not come up"
a_id=$(grep '"monitor": *"a"' "$T/hook.jsonl" | grep -o '"id": *[0-9]*' |
    grep -o '[0-9]*$')
ok "a is down, its alert (id $a_id) delivered once"

# Phase 2: the receiver refuses (500); B's server dies, so B's DOWN alert
# waits in the outbox.  Kill the agent mid-burst.
echo 500 >"$T/hook.status"
kill "$victim_PID"
EXPECT=down wait_until 15 is state_of b || fail "b did not go down"
EXPECT=1 wait_until 15 is outbox_count b || fail "b's alert not in the outbox"
burst_rows() { [ "$(sql "$DB" "SELECT count(*) FROM checks")" -ge "$1" ]; }
before=$(sql "$DB" "SELECT count(*) FROM checks")
wait_until 15 burst_rows $((before + 500)) || fail "no write burst"
read -r snap_max snap_count <<<"$(sql "$DB" "SELECT max(id), count(*) FROM checks" | tr '|' ' ')"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
ok "killed mid-burst after $snap_count committed check rows"

[ "$(sql "$DB" "PRAGMA integrity_check")" = ok ] ||
    fail "integrity_check after SIGKILL"
[ "$(sql "$DB" "SELECT count(*) FROM checks WHERE id <= $snap_max")" = "$snap_count" ] ||
    fail "check rows committed before the kill are missing"
[ "$(outbox_count b)" = 1 ] || fail "b's alert lost from the outbox"
b_id=$(sql "$DB" "SELECT o.id FROM outbox o JOIN monitors m ON m.id = o.monitor_id WHERE m.name = 'b'")
ok "database intact; b's alert (id $b_id) survived in the outbox"

# Phase 3: the receiver accepts again; restart on the same database.
from=$(( $(wc -l <"$T/hook.jsonl") + 1 ))
echo 200 >"$T/hook.status"
start_agent "$T/agent.ini"
EXPECT=0 wait_until 15 is outbox_count b || fail "b's alert not delivered after restart"
# Let a few rounds of checks run: a and b are still down.
after_restart=$(sql "$DB" "SELECT count(*) FROM checks")
wait_until 15 burst_rows $((after_restart + 1000)) || fail "no checks after restart"
[ "$(sql "$DB" "SELECT count(*) FROM checks WHERE id <= $snap_max")" = "$snap_count" ] ||
    fail "check rows from before the kill disappeared after restart"
[ "$(state_of a)" = down ] && [ "$(state_of b)" = down ] ||
    fail "a and b should still be down"

# Exactly once, by incident id: b's after the restart, a's never again.
[ "$(tail -n "+$from" "$T/hook.jsonl" | grep -c "\"id\": *$b_id[,}]")" = 1 ] ||
    fail "b's alert (id $b_id) not delivered exactly once after restart"
[ "$(grep -c "\"id\": *$a_id[,}]" "$T/hook.jsonl")" = 1 ] ||
    fail "a's alert (id $a_id) was delivered again"
# State resumed: no new DOWN incident for a or b.
[ "$(hook_lines a down "$from")" = 0 ] || fail "a alerted DOWN again after restart"
[ "$(hook_lines b down "$from")" = 1 ] || fail "b alerted DOWN more than once"
[ "$(tail -n "+$from" "$T/hook.jsonl" | wc -l)" = 1 ] ||
    fail "unexpected deliveries after restart"
ok "each incident delivered exactly once; state resumed"

# The async-operation monitor: start-up steps, and the retention job
# (first run five seconds after start).
json=$(curl -fsS "$API/api/monitor")
for step in "open database" "load plugin tcp" "load plugin alert-webhook" \
    "start database writer" "bind API" \
    "load configuration" "load alert outbox" "configure monitors" \
    "sync monitors"; do
	echo "$json" | grep -q "\"name\":\"$step\",\"category\":\"startup\",\"outcome\":\"succeeded\"" ||
	    fail "start-up step \"$step\" not in /api/monitor"
done
retention_ran() {
	curl -fsS "$API/api/monitor" |
	    grep -q '"retention":{"running":0,"succeeded":[1-9]'
}
wait_until 15 retention_ran || fail "retention job not registered"
ok "start-up steps and the retention job are in /api/monitor"
stop_agent
