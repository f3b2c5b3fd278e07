#!/bin/bash
# Commit first, then deliver; and a full queue never loses a state change.
# Another process holds the database's write lock while 20 monitors fill a
# small store queue (WATCHPOST_STORE_QUEUE_MAX) and a monitor goes DOWN:
# while the lock is held the receiver gets nothing (the alert's outbox row
# is not committed), plain check rows are dropped and shed, and the state
# change is kept.  Once the lock goes, the state and the alert are in the
# database and the alert is delivered exactly once.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
start_httpd victim
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/accepted.jsonl"
DB="$T/agent.db"
export WATCHPOST_STORE_QUEUE_MAX=40
export WATCHPOST_ALERT_BACKOFF_MAX_MS=300

{
	cat <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

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
	for i in $(seq 20); do
		printf '[monitor:w%d]\ntype = tcp\nhost = 127.0.0.1\nport = %s\ninterval = 100ms\nalerts = none\n' \
		    "$i" "$web_PORT"
	done
} >"$T/agent.ini"

q() { sql "$DB" "$1" 2>/dev/null; }
hook_count() { cat "$T/$2.jsonl" 2>/dev/null | grep -c "\"monitor\": *\"$1\"" || true; }

start_agent "$T/agent.ini"
EXPECT=up wait_until 15 is state_of b || fail "b did not come up"
ok "b is up"

# Hold the write lock until $T/hold goes (at most 30 s).
touch "$T/hold"
sqlite3 "$DB" "BEGIN IMMEDIATE;" \
    ".shell touch '$T/locked'; i=0; while [ -e '$T/hold' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done" \
    "COMMIT;" >/dev/null 2>&1 &
LOCK_PID=$!
PIDS+=("$LOCK_PID")
wait_until 10 test -e "$T/locked" || fail "could not take the write lock"
wait_until 15 at_least 1 metric watchpost_store_failing || fail "the store did not notice the lock"
wait_until 15 at_least 40 metric watchpost_store_queue_depth || fail "the queue did not fill"
wait_until 15 at_least 1 metric watchpost_store_dropped_total || fail "nothing dropped"

# b goes DOWN with the queue full and the database locked.
kill "$victim_PID"
wait_until 15 grep -q 'monitor b: up -> DOWN' "$T/agent.log" || fail "b did not go down"
# Give a delivery from memory time to happen (there must be none).
sleep 1
[ "$(hook_count b hook)" = 0 ] ||
    fail "the alert was sent before its outbox row was committed"
wait_until 15 at_least 1 metric watchpost_store_shed_total ||
    fail "the state change shed no plain check row"
kill -0 "$LOCK_PID" 2>/dev/null || fail "the lock was released too early for the test"
[ "$(pending_of b)" = 0 ] || fail "the outbox row was committed through the lock?"
shed=$(metric watchpost_store_shed_total)
ok "lock held: no delivery, $(metric watchpost_store_dropped_total) check rows dropped, $shed shed"

rm -f "$T/hold"
wait "$LOCK_PID" 2>/dev/null || true
EXPECT=down wait_until 15 is state_of b || fail "b's state change was lost"
EXPECT=1 wait_until 15 is hook_count b accepted || fail "b's alert was not delivered"
EXPECT=0 wait_until 15 is pending_of b || fail "b's delivery was not recorded"
# Plain check rows were lost to the full queue, so the agent exits 1.
rc=0
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc after dropping and shedding rows, not 1"
[ "$(hook_count b hook)" = 1 ] || fail "b's alert was sent $(hook_count b hook) times"
[ "$(q "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'b' AND c.ok = 0")" -ge 1 ] ||
    fail "b's DOWN check row was lost"
ok "lock gone: state and alert row committed, the alert delivered exactly once"
