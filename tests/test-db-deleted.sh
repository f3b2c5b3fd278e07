#!/bin/bash
# The database deleted, then replaced, under the running agent.  A monitor
# is DOWN and its alert waits in the outbox (the receiver answers 500).
# After `rm agent.db*` the agent must recreate the file within a few
# seconds with the monitors, the state, the pending alert and the history,
# and go on writing check rows there; once the receiver accepts, the alert
# arrives exactly once, and a restart raises no new DOWN.  Then another
# file is moved over the database, with a -wal of its own: the same, and
# those files are kept as agent.db.replaced and agent.db.replaced-wal.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/accepted.jsonl" \
    --hook-status-file "$T/hook.status"
echo 500 >"$T/hook.status"
DB="$T/agent.db"
export WATCHPOST_ALERT_BACKOFF_MAX_MS=300

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

; Down from the start: nothing listens on port 1.
[monitor:down]
type = tcp
host = 127.0.0.1
port = 1
interval = 200ms
retries = 0
alerts = hook

[monitor:up]
type = tcp
host = 127.0.0.1
port = $web_PORT
interval = 100ms
alerts = none

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI

q() { sql "$DB" "$1" 2>/dev/null; }
checks_since() { q "SELECT count(*) FROM checks WHERE ts >= $1"; }
accepted() { cat "$T/accepted.jsonl" 2>/dev/null | grep -c "\"monitor\": *\"$1\"" || true; }

start_agent "$T/agent.ini"
EXPECT=down wait_until 15 is state_of down || fail "monitor down not DOWN"
EXPECT=1 wait_until 15 is pending_of down || fail "the alert is not pending"
wait_until 15 grep -q 'delivery for monitor down failed' "$T/agent.log" ||
    fail "the receiver did not refuse the alert"
history=$(q "SELECT count(*) FROM checks")
ids=$(q "SELECT id || name FROM monitors ORDER BY id" | tr '\n' ' ')
ok "down is DOWN, its alert pending, $history checks stored"

# 1. Deleted: the database and its -wal and -shm.
t_rm=$(date +%s%3N)
rm -f "$DB" "$DB-wal" "$DB-shm"
wait_until 15 grep -q "store: $DB was deleted while open" "$T/agent.log" ||
    fail "the deletion was not noticed"
wait_until 15 grep -q "store: $DB recreated" "$T/agent.log" ||
    fail "the database was not recreated"
[ -f "$DB" ] || fail "no file at $DB"
[ "$(q "SELECT id || name FROM monitors ORDER BY id" | tr '\n' ' ')" = "$ids" ] ||
    fail "monitors (with their ids) not in the new file"
[ "$(state_of down)" = down ] || fail "the state is not in the new file"
[ "$(pending_of down)" = 1 ] || fail "the pending alert is not in the new file"
at_least "$history" q "SELECT count(*) FROM checks" ||
    fail "the history is not in the new file"
wait_until 15 at_least 10 checks_since "$t_rm" ||
    fail "no new check rows in the new file"
[ "$(q "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
[ "$(metric watchpost_store_recreated_total)" = 1 ] ||
    fail "watchpost_store_recreated_total is not 1"
ok "deleted: recreated with monitors, state, pending alert, history; rows go on"

# The alert arrives once the receiver accepts, exactly once.
echo 200 >"$T/hook.status"
EXPECT=0 wait_until 15 is pending_of down || fail "the alert was not delivered"
EXPECT=1 wait_until 15 is accepted down || fail "the receiver did not get it"

# Restart: the state survived, so no second DOWN.
stop_agent
start_agent "$T/agent.ini"
t_restart=$(date +%s%3N)
wait_until 15 at_least 10 checks_since "$t_restart" || fail "no checks after restart"
[ "$(state_of down)" = down ] || fail "state lost across the restart"
[ "$(accepted down)" = 1 ] || fail "the alert was delivered $(accepted down) times"
[ "$(wc -l <"$T/hook.jsonl")" -ge 2 ] || fail "the receiver saw fewer requests than attempts"
ok "the pending alert delivered exactly once; no new DOWN after a restart"

# 2. Replaced: another SQLite file moved over it, with an alert pending.
echo 500 >"$T/hook.status"
sed -i "s/^port = 1\$/port = $web_PORT/" "$T/agent.ini"
kill -HUP "$AGENT_PID"
EXPECT=up wait_until 15 is state_of down || fail "monitor down did not come up"
EXPECT=1 wait_until 15 is pending_of down || fail "the UP alert is not pending"
sql "$T/other.db" "CREATE TABLE other(x); INSERT INTO other VALUES (42)"
echo "not our WAL" >"$T/other.db-wal"
history=$(q "SELECT count(*) FROM checks")
t_mv=$(date +%s%3N)
mv "$T/other.db" "$DB"
mv "$T/other.db-wal" "$DB-wal"
wait_until 15 grep -q "store: $DB was replaced by another file" "$T/agent.log" ||
    fail "the replacement was not noticed"
wait_until 15 grep -q "store: $DB recreated" "$T/agent.log" ||
    fail "the database was not recreated after the replacement"
[ "$(cat "$DB.replaced-wal")" = "not our WAL" ] ||
    fail "the -wal moved over ours was not kept beside it"
[ "$(sql "$DB.replaced" "SELECT x FROM other")" = 42 ] ||
    fail "the file moved over the database was not kept"
[ "$(q "SELECT id || name FROM monitors ORDER BY id" | tr '\n' ' ')" = "$ids" ] ||
    fail "monitors not in the file after the replacement"
[ "$(state_of down)" = up ] || fail "the state is not in the file after the replacement"
[ "$(pending_of down)" = 1 ] || fail "the pending alert is not in the file"
at_least "$history" q "SELECT count(*) FROM checks" || fail "history lost"
wait_until 15 at_least 10 checks_since "$t_mv" ||
    fail "no new check rows after the replacement"
[ "$(q "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
echo 200 >"$T/hook.status"
EXPECT=0 wait_until 15 is pending_of down || fail "the UP alert was not delivered"
EXPECT=2 wait_until 15 is accepted down || fail "the receiver did not get the UP alert"
stop_agent
[ "$(accepted down)" = 2 ] || fail "alerts delivered $(accepted down) times, not 2"
grep '"monitor": *"down"' "$T/accepted.jsonl" | sed -n '2p' | grep -q '"state": *"up"' ||
    fail "the second alert is not the UP"
ok "replaced: recreated, the other file kept as agent.db.replaced, UP delivered once"
