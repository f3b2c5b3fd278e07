#!/bin/bash
# The push check type (heartbeats) with the real daemon: -t refuses a
# token file others can read, a token of the wrong form and one token on
# two monitors; curl pushes to /push/TOKEN on loopback need no API token
# even with api_token_file set; a push makes the monitor UP, silence past
# interval + grace makes it DOWN, status=down&msg= is DOWN with the message
# in SQLite, duration_ms a measurement in SQLite and on /metrics; pushes
# alert and go through down_after as any check; an unknown token is 404;
# reload refuses a duplicate token and routes a new one; --once shows
# PENDING; no token reaches the log.
. "$abs_top_srcdir/tests/lib.sh"

TOK1=hb-0123456789abcdef0123456789
TOK2=job-fedcba9876543210fedcba98
TOK3=fresh-00000000000000000000000
umask 077
printf '%s\n' "$TOK1" >"$T/hb.token"
printf '%s\n' "$TOK2" >"$T/job.token"
printf '%s\n' "$TOK3" >"$T/fresh.token"
printf '%s\n' "admin-secret-token-0123456789" >"$T/api.token"
printf 'short\n' >"$T/short.token"
TOK5=strict-0123456789abcdef01234
printf '%s\n' "$TOK5" >"$T/strict.token"
cp "$T/hb.token" "$T/loose.token"
chmod 644 "$T/loose.token"

# ---- -t ------------------------------------------------------------------
cat >"$T/bad.ini" <<INI
[agent]
listen = off

[monitor:loose]
type = push
token_file = $T/loose.token

[monitor:short]
type = push
token_file = $T/short.token

[monitor:first]
type = push
token_file = $T/hb.token

[monitor:second]
type = push
token_file = $T/hb.token
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
cat "$T/t.out"
[ "$rc" -eq 1 ] || fail "-t on a bad file: exit 1, got $rc"
grep -q "bad.ini:6: token_file: .*readable or writable by other users" \
    "$T/t.out" || fail "a token file others can read is not refused at its line"
grep -q "bad.ini:10: token: must be 16 to 128 characters" "$T/t.out" ||
    fail "a short token is not refused at its line"
grep -q "bad.ini:16: \[monitor:second\]: its push token is also monitor \"first\"'s (.*bad.ini:12)" \
    "$T/t.out" || fail "a token on two monitors is not refused"
grep -q "$TOK1\|short$" "$T/t.out" && fail "a token value was quoted by -t"
ok "-t refuses a loose token file, a malformed token and a token on two monitors"

# ---- the daemon ------------------------------------------------------------
DB="$T/wp.db"
start_httpd hook --record "$T/hook.jsonl"
cat >"$T/wp.ini" <<INI
[agent]
database = $DB
listen = 127.0.0.1:0
api_token_file = $T/api.token
log_level = debug

[monitor:hb]
type = push
token_file = $T/hb.token
interval = 1s
grace = 1s
timeout = 500ms
retries = 0
alerts = none

[monitor:job]
type = push
token_file = $T/job.token
interval = 1h
alerts = hook

[monitor:fresh]
type = push
token_file = $T/fresh.token
interval = 1h
alerts = none

[monitor:strict]
type = push
token_file = $T/strict.token
interval = 1h
down_after = 2
alerts = none

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
INI
"$WATCHPOST" -t -c "$T/wp.ini" -P "$PLUGINS" || fail "-t on a good file"
start_agent "$T/wp.ini"
AUTH="Authorization: Bearer admin-secret-token-0123456789"

code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

# The admin token guards the API ...
[ "$(code "$API/api/monitors")" = 401 ] || fail "the API is not guarded"
# ... but not pushes.
[ "$(code "$API/push/$TOK1")" = 200 ] || fail "push without the API token: $(cat "$T/body")"
grep -q '"ok":true' "$T/body" || fail "push answer: $(cat "$T/body")"
grep -q '"monitor":"hb"' "$T/body" || fail "push answer names its monitor"
EXPECT=up
wait_until 10 is state_of hb || fail "hb not up after a push"
ok "a push needs no API token and makes the monitor UP"

# Unknown tokens: 404, the same answer as any unknown path.
[ "$(code "$API/push/nope-0123456789abcdef0000")" = 404 ] ||
    fail "unknown token not 404"
grep -q '"error":"not found"' "$T/body" || fail "404 body: $(cat "$T/body")"
[ "$(code "$API/push/${TOK1}x")" = 404 ] || fail "a longer token matched"
[ "$(code "$API/push/${TOK1%?}")" = 404 ] || fail "a prefix of a token matched"
[ "$(code -X DELETE "$API/push/$TOK1")" = 405 ] || fail "DELETE not 405"
ok "unknown tokens are 404"

# Malformed pushes: 400 with the parser's message, nothing recorded.
n0=$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'job'")
[ "$(code "$API/push/$TOK2?status=maybe")" = 400 ] || fail "bad status not 400"
grep -q 'neither up nor down' "$T/body" || fail "400 body: $(cat "$T/body")"
[ "$(code "$API/push/$TOK2?colour=red")" = 400 ] || fail "unknown parameter not 400"
ok "malformed pushes are 400 with the reason"

# status=down&msg=: DOWN, the message (control characters removed) stored.
[ "$(code "$API/push/$TOK2?status=down&msg=disk+full%2B%0A%1B%5B31m")" = 200 ] ||
    fail "down push: $(cat "$T/body")"
grep -q '"state":"down"' "$T/body" || fail "down push answer: $(cat "$T/body")"
EXPECT=down
wait_until 10 is state_of job || fail "job not down after status=down"
err() { sql "$DB" "SELECT c.error FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1' ORDER BY c.id DESC LIMIT 1"; }
EXPECT="the job reported a failure: disk full+[31m"
wait_until 10 is err job || fail "stored error: $(err job)"
ok "status=down&msg= is DOWN with the message in SQLite"

# A POSTed form with duration_ms: UP again, and a measurement.
[ "$(code --data 'duration_ms=1500' "$API/push/$TOK2")" = 200 ] ||
    fail "POST push: $(cat "$T/body")"
EXPECT=up
wait_until 10 is state_of job || fail "job not up after a POST push"
meas() { sql "$DB" "SELECT x.value FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'job' AND x.name = 'duration_seconds' ORDER BY c.id DESC LIMIT 1"; }
EXPECT=1.5
wait_until 10 is meas || fail "duration not stored: $(meas)"
curl -fsS -H "$AUTH" "$API/metrics" >"$T/metrics"
grep -q '^watchpost_monitor_measurement{monitor="job",type="push",name="duration_seconds"} 1\.50*$' \
    "$T/metrics" || fail "duration not on /metrics"
n1=$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'job'")
[ "$n1" -eq $((n0 + 2)) ] || fail "job: $n0 -> $n1 checks (want two pushes recorded, no 400s)"
ok "duration_ms is a measurement in SQLite and on /metrics"

# The pushes alerted as any check does: pending -> DOWN, then DOWN -> UP.
alerts() { grep -c '"monitor":"job"' "$T/hook.jsonl" 2>/dev/null; }
EXPECT=2
wait_until 20 is alerts || fail "job's alerts: $(cat "$T/hook.jsonl" 2>/dev/null)"
sed -n 1p "$T/hook.jsonl" | grep '"state":"down"' | grep -q 'disk full+' ||
    fail "the DOWN alert: $(sed -n 1p "$T/hook.jsonl")"
sed -n 2p "$T/hook.jsonl" | grep -q '"state":"up"' ||
    fail "the UP alert: $(sed -n 2p "$T/hook.jsonl")"
ok "a push's state change alerts (DOWN with the job's message, then UP)"

# The policy keys apply to pushes: down_after = 2 takes two down pushes.
code "$API/push/$TOK5" >/dev/null
[ "$(code "$API/push/$TOK5?status=down")" = 200 ] || fail "strict: first down push"
grep -q '"state":"up"' "$T/body" || fail "strict down after one failure: $(cat "$T/body")"
[ "$(code "$API/push/$TOK5?status=down")" = 200 ] || fail "strict: second down push"
grep -q '"state":"down"' "$T/body" || fail "strict not down after two: $(cat "$T/body")"
ok "down_after applies to pushes"

# Silence: DOWN once interval + grace (2 s) has passed without a push.
EXPECT=down
wait_until 30 is state_of hb || fail "hb not down without pushes"
EXPECT=1
wait_until 10 is sql "$DB" "SELECT count(*) > 0 FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'hb' AND c.error LIKE 'no heartbeat for % (expected every 1s + 1s grace)'" ||
    fail "no 'no heartbeat' error stored: $(err hb)"
# And UP again with the next push.
[ "$(code "$API/push/$TOK1")" = 200 ] || fail "push after silence"
EXPECT=up
wait_until 10 is state_of hb || fail "hb not up again after a push"
ok "DOWN after interval + grace without pushes, UP with the next"

# A monitor that never got a push, its first heartbeat not yet due
# (interval 1h): pending, no check recorded.
[ "$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'fresh'")" = 0 ] ||
    fail "fresh: a check was recorded before its first heartbeat was due"
curl -fsS -H "$AUTH" "$API/api/monitors" >"$T/monitors.json"
jq -e '.[] | select(.name == "fresh") | .state == "pending"' \
    "$T/monitors.json" >/dev/null || fail "fresh is not pending"
ok "a push monitor stays pending until its first heartbeat is due"

# A too large body: 413.
head -c 5000 /dev/zero | tr '\0' a >"$T/big"
[ "$(code --data-binary @"$T/big" "$API/push/$TOK2")" = 413 ] ||
    fail "a 5000-byte body not refused"

# Reload: a second monitor with hb's token is refused as a whole ...
cp "$T/wp.ini" "$T/wp.ini.good"
cat >>"$T/wp.ini" <<INI

[monitor:copycat]
type = push
token_file = $T/hb.token
INI
kill -HUP "$AGENT_PID"
wait_until 10 grep -q 'reload rejected' "$T/agent.log" ||
    fail "a reload with a duplicate token was not rejected"
grep -q 'wp.ini:[0-9]*: \[monitor:copycat\]: its push token is also monitor "hb"' \
    "$T/agent.log" || fail "the rejected reload does not say why"
[ "$(code "$API/push/$TOK1")" = 200 ] || fail "hb's push after a rejected reload"
grep -q '"monitor":"hb"' "$T/body" || fail "hb's token moved: $(cat "$T/body")"
# ... and one with its own token is routed once applied.
cp "$T/wp.ini.good" "$T/wp.ini"
TOK4=added-0123456789abcdefABCDEF
printf '%s\n' "$TOK4" >"$T/added.token"
cat >>"$T/wp.ini" <<INI

[monitor:added]
type = push
token_file = $T/added.token
interval = 1h
alerts = none
INI
[ "$(code "$API/push/$TOK4")" = 404 ] || fail "a token pushed before its monitor exists"
kill -HUP "$AGENT_PID"
wait_until 10 grep -q 'reload applied' "$T/agent.log" ||
    fail "the reload adding a push monitor was not applied"
[ "$(code "$API/push/$TOK4?duration_ms=20")" = 200 ] ||
    fail "push to a monitor added by reload: $(cat "$T/body")"
grep -q '"monitor":"added"' "$T/body" || fail "added: $(cat "$T/body")"
EXPECT=up
wait_until 10 is state_of added || fail "added not up after its push"
ok "reload refuses a duplicate token and routes a new monitor's"

stop_agent
for t in "$TOK1" "$TOK2" "$TOK3" "$TOK4" "$TOK5"; do
	grep -q -- "$t" "$T/agent.log" && fail "a push token reached the log"
done
ok "no token in the log"

# --once cannot judge heartbeats: the monitor is PENDING, no crash, no hang.
rc=0
timeout 20 "$WATCHPOST" --once job -c "$T/wp.ini" -P "$PLUGINS" >"$T/once.out" 2>&1 || rc=$?
cat "$T/once.out"
[ "$rc" -ne 124 ] || fail "--once hung on a push monitor"
grep -q '^job  *push  *PENDING' "$T/once.out" || fail "--once: job not PENDING"
ok "--once prints a push monitor as PENDING"
