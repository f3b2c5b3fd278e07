#!/bin/bash
# group_window: 20 monitors going down at once reach a grouping alert
# plugin as ONE operation listing all 20 (each with its own id and the
# 2.1 fields: target, agent, since); while the receiver refuses, the
# group's rows stay pending in /api/alerts (attempts, next_attempt,
# last_error) and in the outbox; after SIGKILL they are regrouped and
# delivered as one operation, each id exactly once; the per-section
# counters count alerts.
. "$abs_top_srcdir/tests/lib.sh"

mkdir "$T/plugins"
cp "$PLUGINS/tcp.so" "$TEST_PLUGINS/alert-grouprec.so" "$T/plugins/"
start_httpd victim
DB="$T/agent.db"
REC="$T/rec.txt"
export WATCHPOST_ALERT_BACKOFF_MAX_MS=300

{
	cat <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
name = test-agent

[alert:grp]
type = grouprec
record = $REC
status_path = $T/status
group_window = 2s
INI
	for i in $(seq 20); do
		printf '[monitor:m%02d]\ntype = tcp\nhost = 127.0.0.1\nport = %s\ninterval = 200ms\ntimeout = 150ms\nretries = 0\n\n' \
		    "$i" "$victim_PORT"
	done
} >"$T/agent.ini"

ops() { grep -c '^op ' "$REC" 2>/dev/null || echo 0; }
outbox() { sql "$DB" "SELECT count(*) FROM outbox"; }
# alert lines with state $1
alerts_in() { grep '^alert ' "$REC" 2>/dev/null | grep -c " state=$1 " || true; }

# -t says nothing about group_window: this type groups.
"$WATCHPOST" -t -c "$T/agent.ini" -P "$T/plugins" >"$T/t.out" 2>"$T/t.err" ||
    fail "-t rejected the file: $(cat "$T/t.err")"
! grep -q group_window "$T/t.err" || fail "-t warned about group_window"

start_agent "$T/agent.ini" -P "$T/plugins"
for i in $(seq -w 1 20); do
	EXPECT=up wait_until 15 is state_of "m$i" || fail "m$i did not come up"
done
[ "$(ops)" = 0 ] || fail "coming up alerted"

# Phase 1: the server goes away; all 20 go down within the window.
kill "$victim_PID"
EXPECT=1 wait_until 20 is ops || fail "no grouped delivery"
EXPECT=0 wait_until 15 is outbox || fail "outbox not emptied"
[ "$(ops)" = 1 ] || fail "more than one operation: $(ops)"
grep -q '^op n=20 attempt=0$' "$REC" || fail "the operation does not list 20: $(head -1 "$REC")"
[ "$(alerts_in down)" = 20 ] || fail "not 20 down alerts: $(alerts_in down)"
[ "$(grep '^alert ' "$REC" | sed 's/.* id=\([0-9]*\) .*/\1/' | sort -u | wc -l)" = 20 ] ||
    fail "the 20 alerts do not carry 20 distinct ids"
[ "$(grep -c " target=127.0.0.1:$victim_PORT agent=test-agent flags=0 repeat=0$" "$REC")" = 20 ] ||
    fail "target / agent / flags not filled: $(sed -n 2p "$REC")"
! grep '^alert ' "$REC" | grep -q ' since_us=0 ' || fail "since not filled"
# Ids in order within the group (oldest first).
grep '^alert ' "$REC" | sed 's/.* id=\([0-9]*\) .*/\1/' >"$T/ids1"
sort -n "$T/ids1" | cmp -s - "$T/ids1" || fail "group not oldest first"
ok "20 monitors down within group_window: one operation listing all 20"

m=$(curl -fsS "$API/metrics")
echo "$m" | grep -q '^watchpost_alert_deliveries_total{alert="grp",outcome="delivered"} 20$' ||
    fail "deliveries_total delivered != 20: $(echo "$m" | grep deliveries_total)"
echo "$m" | grep -q '^watchpost_alert_pending{alert="grp"} 0$' || fail "pending != 0"
curl -fsS "$API/api/alerts" >"$T/a.json"
[ "$(jq '.delivered | length' "$T/a.json")" = 20 ] || fail "/api/alerts delivered != 20"
[ "$(jq -r '[.delivered[] | select(.alert == "grp" and .state == "down")] | length' "$T/a.json")" = 20 ] ||
    fail "delivered entries wrong"
[ "$(jq '.pending | length' "$T/a.json")" = 0 ] || fail "pending not empty"
[ "$(jq -c '.held' "$T/a.json")" = '[]' ] || fail "held not []"
ok "metrics and /api/alerts count 20 delivered"

# Phase 2: the receiver refuses; the server comes back on the same port:
# 20 up alerts form one group that keeps failing.
echo down >"$T/status"
start_httpd victim2 --port "$victim_PORT"
for i in $(seq -w 1 20); do
	EXPECT=up wait_until 15 is state_of "m$i" || fail "m$i did not come back"
done
EXPECT=20 wait_until 15 is outbox || fail "20 up alerts not in the outbox"
failed_twice() {
	sql "$DB" "SELECT count(*) FROM outbox WHERE attempts >= 2 AND last_error = 'refused: down'" |
	    grep -qx 20
}
wait_until 20 failed_twice || fail "the group was not retried"
# /api/alerts: every pending row, with last_error and (between attempts)
# next_attempt; no id missing.
backing_off() {
	curl -fsS "$API/api/alerts" >"$T/a.json" &&
	    [ "$(jq '[.pending[] | select(.grouped and .attempts >= 1 and .last_error == "refused: down" and .next_attempt != null and .state == "up")] | length' "$T/a.json")" = 20 ]
}
wait_until 20 backing_off || fail "/api/alerts pending wrong: $(cat "$T/a.json")"
m=$(curl -fsS "$API/metrics")
echo "$m" | grep -q '^watchpost_alert_pending{alert="grp"} 20$' || fail "pending gauge != 20"
failed=$(echo "$m" | sed -n 's/^watchpost_alert_deliveries_total{alert="grp",outcome="failed"} //p')
[ "$failed" -ge 40 ] && [ $((failed % 20)) = 0 ] ||
    fail "failed counter $failed: not a multiple of 20 >= 40"
[ "$(ops)" = 1 ] || fail "a refused group was recorded"
ok "refused group: 20 pending rows with attempts, next_attempt, last_error; counters"

# Phase 3: SIGKILL, then restart with the receiver accepting: the 20 rows
# are regrouped into one operation, each id once.
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
[ "$(outbox)" = 20 ] || fail "outbox rows lost at SIGKILL: $(outbox)"
sql "$DB" "SELECT id FROM outbox ORDER BY id" >"$T/ids2"
echo ok >"$T/status"
start_agent "$T/agent.ini" -P "$T/plugins"
EXPECT=0 wait_until 20 is outbox || fail "regrouped rows not delivered"
EXPECT=2 wait_until 10 is ops || fail "not two operations in all: $(ops)"
[ "$(sed -n '/^op /p' "$REC" | sed -n 2p | cut -d' ' -f2)" = n=20 ] ||
    fail "the restart did not deliver the 20 as one group: $(grep '^op ' "$REC")"
[ "$(alerts_in up)" = 20 ] || fail "not 20 up alerts: $(alerts_in up)"
grep '^alert ' "$REC" | grep ' state=up ' | sed 's/.* id=\([0-9]*\) .*/\1/' >"$T/ids3"
cmp -s "$T/ids2" "$T/ids3" || fail "regrouped ids differ from the outbox's"
[ "$(grep '^alert ' "$REC" | sed 's/.* id=\([0-9]*\) .*/\1/' | sort | uniq -d | wc -l)" = 0 ] ||
    fail "an id was delivered twice"
# The up alerts' since is the outage's start, carried across the kill.
! grep ' state=up ' "$REC" | grep -q ' since_us=0 ' || fail "up alerts lost since"
ok "after SIGKILL the 20 pending rows were regrouped: one operation, each id once"
stop_agent
