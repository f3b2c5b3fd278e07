#!/bin/bash
# The transition policy end to end: the real daemon, http monitors against
# tests/testhttpd targets whose answers follow a script (a status file of
# codes, one taken per request), and two webhook receivers.
#   1. down_after = 3, up_after = 2: two failures change nothing and alert
#      nothing (the check rows are stored); three give one DOWN.
#   2. renotify = 1s, escalate = 2s oncall: reminders with repeat 1, 2, ...
#      and one escalation, seen in the outbox (the receiver refuses); then
#      SIGKILL and restart, and a SIGHUP of the unchanged file: the
#      transition is not raised again, reminders go on from the next
#      number, the escalation is not repeated; the receiver, once it
#      accepts, gets each alert once; recovery reaches the escalated
#      section too and stops the reminders.
#   3. latency_warn: degraded (reason slow) in the API and the check rows,
#      one alert with alert_on = degraded however many checks.
#   4. cert_warn: a certificate expiring in 2 days against 7d: degraded,
#      reason cert_expiry.
#   5. -t: the policy keys' errors as FILE:LINE.
# Counts only: every wait is bounded, nothing asserts a duration.
. "$abs_top_srcdir/tests/lib.sh"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$T/short-key.pem" -out "$T/short-cert.pem" 2>/dev/null ||
    fail "openssl could not make a test certificate"
echo 200 >"$T/flap.status"
echo 500 >"$T/tgt.status"
echo 500 >"$T/pager.status"
start_httpd flap --hook-status-file "$T/flap.status"
start_httpd tgt --hook-status-file "$T/tgt.status"
start_httpd web
start_httpd tls --tls "$T/short-cert.pem" "$T/short-key.pem"
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/hook-ok.jsonl"
start_httpd pager --record "$T/pager.jsonl" --accepted "$T/pager-ok.jsonl" \
    --hook-status-file "$T/pager.status"
DB="$T/agent.db"
export WATCHPOST_ALERT_BACKOFF_MAX_MS=300

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:f]
type = http
url = http://127.0.0.1:$flap_PORT/hook
interval = 200ms
timeout = 5s
retries = 0
down_after = 3
up_after = 2
alerts = hook

[monitor:r]
type = http
url = http://127.0.0.1:$tgt_PORT/hook
interval = 200ms
timeout = 5s
retries = 0
renotify = 1s
escalate = 2s oncall
alerts = chat

[monitor:slow]
type = http
url = http://127.0.0.1:$web_PORT/slow?ms=60
interval = 300ms
timeout = 5s
latency_warn = 10ms
alert_on = down,up,degraded
alerts = hook

[monitor:cert]
type = http
url = https://127.0.0.1:$tls_PORT/status/200
verify_tls = false
interval = 300ms
timeout = 5s
cert_warn = 7d
alerts = none

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook?tag=hook
timeout = 5s

[alert:chat]
type = webhook
url = http://127.0.0.1:$pager_PORT/hook?tag=chat
timeout = 5s

[alert:oncall]
type = webhook
url = http://127.0.0.1:$pager_PORT/hook?tag=oncall
timeout = 5s
INI

# Lines of FILE from receiver TAG about monitor M (with STATE if given).
got() {
	{ grep "^$2 " "$1" 2>/dev/null || true; } |
	    { grep "\"monitor\": *\"$3\"" || true; } |
	    { grep "\"state\": *\"${4:-[a-z]*}\"" || true; } | wc -l
}
checks() {
	sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1' AND $2"
}
outbox() {
	sql "$DB" "SELECT $2 FROM outbox o JOIN monitors m ON m.id = o.monitor_id WHERE m.name = '$1' ORDER BY o.id"
}
api_field() { # api_field MONITOR FIELD: its value in /api/monitors
	curl -fsS "$API/api/monitors" | grep -o "{[^{}]*\"name\":\"$1\"[^{}]*}" |
	    sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
}
good_after() { # at least N good checks of f after check row id $2
	[ "$(checks f "ok = 1 AND c.id > $2")" -ge "$1" ]
}

start_agent "$T/agent.ini"
EXPECT=up wait_until 15 is state_of f || fail "f did not come up"

# ---- 1. down_after / up_after ----
base=$(sql "$DB" "SELECT max(id) FROM checks")
echo "500 500 200" >"$T/flap.status"
wait_until 15 good_after 3 "$base" || fail "f's script did not run"
[ "$(checks f "ok = 0 AND c.id > $base")" = 2 ] ||
    fail "f: $(checks f "ok = 0 AND c.id > $base") failed checks, not 2"
[ "$(state_of f)" = up ] || fail "f left up after 2 failures"
[ "$(outbox f 'count(*)')" = 0 ] && [ "$(got "$T/hook.jsonl" hook f)" = 0 ] ||
    fail "f alerted after 2 failures"
ok "down_after = 3: 2 failed checks stored, f still up, no alert"
echo "500 500 500 500 500 500 500 500 500 500 500 500 500 500 500 500 500 500 500 500 200 500 200 200" \
    >"$T/flap.status"
EXPECT=down wait_until 15 is state_of f || fail "f did not go down"
EXPECT=1 wait_until 15 is got "$T/hook-ok.jsonl" hook f down ||
    fail "f's DOWN alert did not arrive"
EXPECT=up wait_until 20 is state_of f || fail "f did not come back up"
EXPECT=1 wait_until 15 is got "$T/hook-ok.jsonl" hook f up ||
    fail "f's UP alert did not arrive"
# The lone good check in "200 500" did not end the outage.
[ "$(got "$T/hook.jsonl" hook f)" = 2 ] ||
    fail "f: $(got "$T/hook.jsonl" hook f) alerts, not one DOWN and one UP"
ok "down_after = 3 gives one DOWN; up_after = 2 one UP after a flap"

# ---- 2. renotify and escalate, across SIGKILL and SIGHUP ----
maxrep() { outbox r "coalesce(max(json_extract(payload, '\$.repeat')), -1)"; }
reps_at_least() { [ "$(maxrep)" -ge "$1" ]; }
oncall_rows() {
	sql "$DB" "SELECT count(*) FROM outbox o JOIN monitors m ON m.id = o.monitor_id WHERE m.name = 'r' AND alert_name = 'oncall' AND json_extract(payload, '\$.flags') = 2"
}
transitions() {
	sql "$DB" "SELECT count(*) FROM outbox o JOIN monitors m ON m.id = o.monitor_id WHERE m.name = 'r' AND alert_name = 'chat' AND json_extract(payload, '\$.repeat') = 0"
}
unique_repeats() { # every chat row of r has its own repeat number
	[ "$(outbox r "count(*)")" = "$(( $(outbox r "count(DISTINCT json_extract(payload, '\$.repeat') || alert_name)") ))" ]
}
EXPECT=down wait_until 15 is state_of r || fail "r did not go down"
wait_until 20 reps_at_least 2 || fail "no second reminder for r"
EXPECT=1 wait_until 15 is oncall_rows || fail "r did not escalate to oncall"
[ "$(transitions)" = 1 ] || fail "r's transition raised $(transitions) times"
reps=$(sql "$DB" "SELECT json_extract(payload, '\$.repeat') FROM outbox WHERE alert_name = 'chat' ORDER BY id" | tr '\n' ' ')
case "$reps" in "0 1 2"*) ;; *) fail "r's repeats in the outbox: $reps" ;; esac
[ "$(outbox r "json_extract(payload, '\$.since_ms')" | sort -u | wc -l)" = 1 ] ||
    fail "r's alerts disagree on since"
ok "renotify: repeats $reps in the outbox; one escalation to oncall"

kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
before=$(maxrep)
[ "$(sql "$DB" "SELECT s.repeats FROM state s JOIN monitors m ON m.id = s.monitor_id WHERE m.name = 'r'")" = "$before" ] ||
    fail "the state row does not count $before reminders"
start_agent "$T/agent.ini"
wait_until 20 reps_at_least $((before + 1)) || fail "no reminder after the restart"
kill -HUP "$AGENT_PID"
wait_until 15 grep -q "configuration applied" "$T/agent.log" ||
    fail "the reload was not applied"
wait_until 20 reps_at_least $((before + 2)) || fail "no reminder after the reload"
[ "$(api_field r state)" = down ] && [ "$(api_field r reason)" = status ] ||
    fail "r in the API: $(api_field r state) $(api_field r reason)"
[ "$(transitions)" = 1 ] || fail "the restart raised r's transition again"
[ "$(oncall_rows)" = 1 ] || fail "the restart escalated again"
unique_repeats || fail "a reminder number was raised twice: $(outbox r "json_extract(payload, '\$.repeat')" | tr '\n' ' ')"
ok "SIGKILL, restart and SIGHUP: reminders go on from $((before + 1)), no second transition or escalation"

# The receiver accepts: each alert arrives once.
echo 200 >"$T/pager.status"
echo 200 >"$T/tgt.status"
EXPECT=up wait_until 15 is state_of r || fail "r did not recover"
EXPECT=0 wait_until 30 is outbox r "count(*)" || fail "r's outbox did not empty"
[ "$(got "$T/pager-ok.jsonl" oncall r down)" = 1 ] ||
    fail "oncall got $(got "$T/pager-ok.jsonl" oncall r down) escalations"
[ "$(got "$T/pager-ok.jsonl" oncall r up)" = 1 ] ||
    fail "the escalated section did not hear of the recovery"
[ "$(got "$T/pager-ok.jsonl" chat r up)" = 1 ] || fail "chat: no UP for r"
downs=$(got "$T/pager-ok.jsonl" chat r down)
ids=$(grep '"monitor": *"r"' "$T/pager-ok.jsonl" | grep -o '"id": *[0-9]*' | sort)
[ "$(echo "$ids" | uniq -d | wc -l)" = 0 ] || fail "an alert arrived twice"
[ "$downs" -ge "$((before + 3))" ] || fail "chat got only $downs DOWN alerts"
sent=$(got "$T/pager.jsonl" chat r down)
sleep 2.5 # two renotify periods: nothing more after the recovery
[ "$(got "$T/pager.jsonl" chat r down)" = "$sent" ] ||
    fail "reminders went on after the recovery"
ok "receiver: $downs DOWN alerts (1 + reminders) once each, 1 escalation, UP to both sections, then silence"

# ---- 3. latency_warn ----
slow_checks() { [ "$(checks slow "ok = 1 AND reason = 'slow'")" -ge "$1" ]; }
wait_until 15 slow_checks 5 || fail "no slow checks stored"
[ "$(api_field slow state)" = degraded ] || fail "slow is not degraded in the API"
[ "$(api_field slow reason)" = slow ] || fail "slow's reason: $(api_field slow reason)"
[ "$(state_of slow)" = degraded ] || fail "slow is not degraded in the store"
EXPECT=1 wait_until 15 is got "$T/hook-ok.jsonl" hook slow degraded ||
    fail "no degraded alert for slow"
[ "$(got "$T/hook.jsonl" hook slow)" = 1 ] || fail "slow alerted more than once"
ok "latency_warn: degraded, reason slow, one alert over $(checks slow "reason = 'slow'") checks"

# ---- 4. cert_warn ----
cert_checks() { [ "$(checks cert "ok = 1 AND reason = 'cert_expiry'")" -ge 2 ]; }
wait_until 15 cert_checks || fail "no cert_expiry checks stored"
[ "$(api_field cert state)" = degraded ] && [ "$(api_field cert reason)" = cert_expiry ] ||
    fail "cert: $(api_field cert state) $(api_field cert reason)"
ok "cert_warn: a certificate expiring in 2 days is degraded, reason cert_expiry"
stop_agent

# ---- 5. -t ----
cat >"$T/bad.ini" <<INI
[alert:a]
type = webhook
url = http://127.0.0.1:1/
[monitor:m]
type = http
url = http://127.0.0.1:1/
down_after = 0
alert_on = down,sideways
escalate = 10m nosuch
renotify = 1m
latency_warn = 2h
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "-t accepted bad policy keys"
for want in "bad.ini:7: " "bad.ini:8: alert_on: \"sideways\"" \
    "bad.ini:9: escalate: unknown alert \"nosuch\"" "bad.ini:11: latency_warn"; do
	grep -qF "$want" "$T/t.out" || { cat "$T/t.out"; fail "-t did not say $want"; }
done
ok "-t reports the policy keys' problems as FILE:LINE"
