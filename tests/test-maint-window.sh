#!/bin/bash
# A [maintenance:NAME] window given by start/end around now, against the
# real daemon and a webhook receiver: during the window the covered
# monitors are checked and their checks stored flagged (checks.maintenance),
# their state shows `maintenance` (/api/monitors, watchpost_monitor_state,
# the status page),
# and no alert goes out; when the window ends, a monitor whose state differs
# from before the window sends ONE alert, one that changed and came back
# sends nothing, and a monitor outside the window is not affected.  Also -t
# on bad windows (FILE:LINE).
. "$abs_top_srcdir/tests/lib.sh"

# 1. -t.
cat >"$T/bad.ini" <<'INI'
[agent]
database = bad.db

[monitor:a]
type = tcp
host = 127.0.0.1
port = 9

[maintenance:w1]
monitors = a, nosuch
schedule = 0 3 * * mon-fri
duration = 2h
timezone = Europe/Berlin

[maintenance:w2]
monitors = *
schedule = 61 3 * * *
duration = 2h

[maintenance:w3]
monitors = a
start = 2026-12-24T22:00:00Z
end = 2026-12-24T21:00:00Z

[maintenance:w4]
monitors = a
start = 2026-12-24T22:00:00Z
timezone = Moon/Base
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "-t with bad windows exited $rc: $(cat "$T/t.out")"
for want in \
    "$T/bad.ini:10: monitors: unknown monitor \"nosuch\" (there is no [monitor:nosuch] section)" \
    "$T/bad.ini:17: schedule: minute: \"61\": values are 0 to 59" \
    "$T/bad.ini:23: end: 2026-12-24T21:00:00Z is not after start 2026-12-24T22:00:00Z" \
    "$T/bad.ini:27: start without end: a one-off window needs both" \
    "$T/bad.ini:28: timezone: unknown time zone \"Moon/Base\" (an IANA name such as Europe/Berlin or UTC)"; do
	grep -qxF "$want" "$T/t.out" || fail "-t lacks \"$want\": $(cat "$T/t.out")"
done
[ "$(grep -c ': ' "$T/t.out")" = 5 ] || fail "-t reported other problems: $(cat "$T/t.out")"
ok "-t: bad monitors, schedule, start/end and timezone are FILE:LINE errors"

# 2. The daemon.
start_httpd a --hook-status-file "$T/a.status"
start_httpd b --hook-status-file "$T/b.status"
start_httpd hook --record "$T/hook.jsonl"
echo 200 >"$T/a.status"
echo 200 >"$T/b.status"
DB="$T/agent.db"
write_ini() { # write_ini [WINDOW-LINES]
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[status]
public = true

[monitor:web-a]
type = http
url = http://127.0.0.1:$a_PORT/hook
interval = 200ms
timeout = 2s
retries = 0

[monitor:web-b]
type = http
url = http://127.0.0.1:$b_PORT/hook
interval = 200ms
timeout = 2s
retries = 0

[monitor:db]
type = http
url = http://127.0.0.1:$a_PORT/status/200
interval = 200ms
timeout = 2s
retries = 0

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s

$1
INI
}
alerts() { # alerts MONITOR [STATE]
	cat "$T/hook.jsonl" 2>/dev/null | grep "\"monitor\": *\"$1\"" |
	    grep -c "\"state\": *\"${2:-[a-z]*}\"" || true
}
api_state() { curl -fsS "$API/api/monitors" | jq -r ".[] | select(.name == \"$1\") | .state"; }
state_metric() { curl -fsS "$API/metrics" | sed -n "s/^watchpost_monitor_state{monitor=\"$1\",type=\"http\",state=\"$2\"} //p"; }
page_state() { curl -fsS "$API/" | grep -o "<h[34][^>]*>$1</h[34]><span class=\"state\" data-state=\"[a-z]*\"" | sed 's/.*data-state="//; s/"$//'; }
flagged() { sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = '$1' AND k.maintenance = $2"; }
ended() { grep -c "hold ended (maintenance patch)" "$T/agent.log" || true; }

write_ini ""
start_agent "$T/agent.ini"
EXPECT=up wait_until 15 is state_of web-a || fail "web-a did not come up"
EXPECT=up wait_until 15 is state_of web-b || fail "web-b did not come up"
EXPECT=up wait_until 15 is state_of db || fail "db did not come up"

# A window from a minute ago to 30 s from now, by reload.
now=$(date +%s)
write_ini "[maintenance:patch]
monitors = web-*
start = $(date -u -d "@$((now - 60))" +%Y-%m-%dT%H:%M:%SZ)
end = $(date -u -d "@$((now + 30))" +%Y-%m-%dT%H:%M:%SZ)"
"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || fail "-t refused the window: $(cat "$T/t.out")"
kill -HUP "$AGENT_PID"
wait_until 15 grep -q 'monitor web-a: alerts held (maintenance patch)' "$T/agent.log" ||
    fail "the window did not hold web-a"
EXPECT=maintenance wait_until 10 is api_state web-a || fail "web-a is not shown in maintenance"
EXPECT=1 wait_until 10 is state_metric web-a maintenance || fail "watchpost_monitor_state does not say maintenance"
[ "$(state_metric web-a up)" = 0 ] || fail "watchpost_monitor_state says up too"
[ "$(api_state db)" = up ] || fail "db, outside the window, is not shown up"
[ "$(page_state web-a)" = maintenance ] || fail "the status page shows web-a as $(page_state web-a)"
[ "$(page_state db)" = up ] || fail "the status page shows db as $(page_state db)"

# In the window: web-a goes down and stays down; web-b goes down and back.
echo 500 >"$T/a.status"
echo 500 >"$T/b.status"
EXPECT=down wait_until 10 is state_of web-a || fail "web-a's DOWN was not recorded"
EXPECT=down wait_until 10 is state_of web-b || fail "web-b's DOWN was not recorded"
echo 200 >"$T/b.status"
EXPECT=up wait_until 10 is state_of web-b || fail "web-b's UP was not recorded"
wait_until 10 at_least 3 sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'web-a' AND k.ok = 0 AND k.maintenance = 1" ||
    fail "web-a's failed checks are not stored flagged"
[ "$(api_state web-a)" = maintenance ] || fail "web-a is not shown in maintenance while down"
[ "$(page_state web-a)" = maintenance ] || fail "the status page shows web-a as $(page_state web-a) while down in the window"
[ "$(ended)" = 0 ] || fail "the window ended before the test could look (a slow machine?)"
[ "$(alerts web-a)" = 0 ] || fail "web-a alerted in the window: $(cat "$T/hook.jsonl")"
[ "$(alerts web-b)" = 0 ] || fail "web-b alerted in the window: $(cat "$T/hook.jsonl")"
[ "$(flagged db 1)" = 0 ] || fail "db's checks are flagged although it is outside the window"
ok "in the window: checks stored flagged, state maintenance, no alerts"

# The end: one DOWN alert for web-a (up before), nothing for web-b.
EXPECT=2 wait_until 45 is ended || fail "the window did not end"
EXPECT=1 wait_until 15 is alerts web-a down || fail "web-a sent no alert at the end of the window"
cat "$T/hook.jsonl" | grep '"monitor": *"web-a"' | grep -q '"previous_state": *"up"' ||
    fail "web-a's alert is not up -> down"
EXPECT=down wait_until 10 is api_state web-a || fail "web-a is not shown down after the window"
[ "$(page_state web-a)" = down ] || fail "the status page shows web-a as $(page_state web-a) after the window"
n=$(flagged web-a 0)
wait_until 15 at_least $((n + 3)) flagged web-a 0 || fail "checks after the window are still flagged"
[ "$(alerts web-a)" = 1 ] || fail "web-a alerted $(alerts web-a) times"
[ "$(alerts web-b)" = 0 ] || fail "web-b alerted although its state is as before the window"
[ "$(alerts db)" = 0 ] || fail "db alerted"
grep -q 'monitor web-b: hold ended (maintenance patch); state up as before' "$T/agent.log" ||
    fail "web-b's quiet end is not logged"
ok "at the end: one DOWN alert for web-a, none for web-b (changed and back) or db"

# After the window web-a alerts as usual.
echo 200 >"$T/a.status"
EXPECT=1 wait_until 15 is alerts web-a up || fail "no UP alert for web-a after the window"
stop_agent
ok "after the window alerts go out as usual"
