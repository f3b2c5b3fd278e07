#!/bin/bash
# History end to end: a monitor goes down and comes back while the agent
# runs; /api/monitors/NAME/incidents shows the closed incident with its
# reason, /uptime counts its checks per window, /checks pages through the
# raw rows without a duplicate, bad query parameters answer 400 with a JSON
# error list, and `watchpost report` reads the same numbers in all three
# formats while the agent is writing (a read-only reader), and after.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web --hook-status-file "$T/status"
echo 200 >"$T/status"
DB="$T/agent.db"

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:flip]
type = http
url = http://127.0.0.1:$web_PORT/hook
interval = 100ms
timeout = 1s
retries = 0
alerts = none

[monitor:steady]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 100ms
timeout = 1s
alerts = none
INI

start_agent "$T/agent.ini"
EXPECT=up wait_until 20 is state_of flip || fail "flip never up"
echo 500 >"$T/status"
EXPECT=down wait_until 20 is state_of flip || fail "flip never down"
n_inc() { sql "$DB" "SELECT count(*) FROM incidents i JOIN monitors m ON m.id = i.monitor_id WHERE m.name = 'flip' AND end_ms IS NULL"; }
EXPECT=1 wait_until 10 is n_inc || fail "no open incident in the database"
# The open incident through the API: end null.
body=$(curl -fsS "$API/api/monitors/flip/incidents")
echo "$body" | grep -q '"end":null' || fail "open incident not shown: $body"
echo "$body" | grep -q '"reason":"http_status"' ||
    echo "$body" | grep -q '"reason":"' || fail "no reason: $body"
echo 200 >"$T/status"
EXPECT=up wait_until 20 is state_of flip || fail "flip never up again"
closed() { sql "$DB" "SELECT count(*) FROM incidents i JOIN monitors m ON m.id = i.monitor_id WHERE m.name = 'flip' AND end_ms > start_ms"; }
EXPECT=1 wait_until 10 is closed || fail "incident not closed"
body=$(curl -fsS "$API/api/monitors/flip/incidents?limit=5")
count=$(echo "$body" | grep -o '"start":' | wc -l)
[ "$count" -eq 1 ] || fail "expected 1 incident: $body"
echo "$body" | grep -q '"end":[0-9]' || fail "incident not closed: $body"
echo "$body" | grep -q '"error":"' || fail "incident without its error: $body"
ok "incident open, then closed, in the database and the API"

# Uptime: checks counted, some down, a fraction below 1.
body=$(curl -fsS "$API/api/monitors/flip/uptime?windows=24h,7d")
echo "$body" | grep -q '"24h":{' || fail "no 24h window: $body"
echo "$body" | grep -q '"7d":{' || fail "no 7d window: $body"
echo "$body" | grep -q '"30d"' && fail "30d not asked: $body"
down=$(echo "$body" | sed -n 's/.*"24h":{[^}]*"down":\([0-9]*\).*/\1/p')
checks=$(echo "$body" | sed -n 's/.*"24h":{[^}]*"checks":\([0-9]*\).*/\1/p')
[ "${down:-0}" -ge 1 ] && [ "${checks:-0}" -gt "$down" ] ||
    fail "uptime counts wrong (checks $checks, down $down): $body"
dbchecks=$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'flip'")
[ "$checks" -le "$dbchecks" ] || fail "more checks ($checks) than rows ($dbchecks)"
echo "$body" | grep -q '"latency_p95_ms":[0-9]' || fail "no p95: $body"
echo "$body" | grep -q '"down_seconds":[0-9.]*[1-9]' || fail "no downtime: $body"
ok "uptime: $checks checks, $down down"

# Checks: page through 35 rows by 7, newest first, no repeats.
steady_rows() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'steady'"; }
wait_until 30 at_least 40 steady_rows || fail "steady: fewer than 40 rows"
cursor="" seen="" pages=0
while [ $pages -lt 5 ]; do
	body=$(curl -fsS "$API/api/monitors/steady/checks?limit=7${cursor:+&cursor=$cursor}")
	seen="$seen $(echo "$body" | grep -o '"ts":[0-9]*' | tr '\n' ' ')"
	cursor=$(echo "$body" | sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p')
	pages=$((pages + 1))
	[ -n "$cursor" ] || break
done
n=$(echo "$seen" | tr ' ' '\n' | grep -c ts)
[ "$n" -eq 35 ] || fail "expected 35 rows in 5 pages, got $n"
sorted=$(echo "$seen" | tr ' ' '\n' | grep ts | sed 's/"ts"://' | sort -rn | tr '\n' ' ')
[ "$sorted" = "$(echo "$seen" | tr ' ' '\n' | grep ts | sed 's/"ts"://' | tr '\n' ' ')" ] ||
    fail "checks not newest first"
ok "checks paged: $n rows, newest first"

# Bad input: 400 with a JSON error list naming each parameter.
code() { curl -s -o "$T/out.json" -w '%{http_code}' "$API$1"; }
for q in 'checks?limit=0' 'checks?limit=abc' 'checks?cursor=nope' \
    'checks?since=yesterday' 'checks?bogus=1' 'uptime?windows=5m' \
    'uptime?windows=' 'incidents?limit=-1' 'incidents?limit=100000'; do
	[ "$(code "/api/monitors/flip/$q")" = 400 ] || fail "$q: not 400"
	grep -q '"errors":\[{"param":' "$T/out.json" || fail "$q: no error list: $(cat "$T/out.json")"
done
[ "$(code /api/monitors/nosuch/uptime)" = 404 ] || fail "unknown monitor: not 404"
[ "$(code /api/monitors/flip/other)" = 404 ] || fail "unknown route: not 404"
ok "bad parameters: 400 with an error list; unknown names 404"

# The report while the agent writes: all three formats.
"$WATCHPOST" report -c "$T/agent.ini" -P "$PLUGINS" --since 24h >"$T/r.txt" ||
    fail "report (table) failed: $(cat "$T/r.txt")"
grep -q '^flip ' "$T/r.txt" && grep -q '^steady ' "$T/r.txt" ||
    fail "table lacks a monitor: $(cat "$T/r.txt")"
"$WATCHPOST" report --database "$DB" --format csv flip >"$T/r.csv" ||
    fail "report (csv) failed"
[ "$(wc -l <"$T/r.csv")" -eq 2 ] || fail "csv: header and one row expected"
head -1 "$T/r.csv" | grep -q '^monitor,type,uptime,checks,down' || fail "csv header"
tail -1 "$T/r.csv" | grep -q '^flip,http,0\.[0-9]*,[0-9]*,[1-9]' ||
    fail "csv row: $(tail -1 "$T/r.csv")"
"$WATCHPOST" report --database "$DB" --format json --since 7d >"$T/r.json" ||
    fail "report (json) failed"
sqlite3 :memory: "SELECT json_extract(readfile('$T/r.json'), '\$.monitors[0].name')" 2>/dev/null | grep -q flip ||
    grep -q '"name": "flip"' "$T/r.json" || fail "json: $(cat "$T/r.json")"
grep -q '"incidents": 1' "$T/r.json" || fail "json lacks the incident"
ok "report in table, csv and json while the agent runs"

# Errors: an unknown name exits 1, a bad option 2.
rc=0; "$WATCHPOST" report --database "$DB" nosuch 2>/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "unknown monitor: exit $rc"
rc=0; "$WATCHPOST" report --database "$DB" --since 5m 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "bad --since: exit $rc"
rc=0; "$WATCHPOST" report --database "$DB" --format xml 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "bad --format: exit $rc"
rows_before=$(sql "$DB" "SELECT count(*) FROM checks")
stop_agent
rows_after=$(sql "$DB" "SELECT count(*) FROM checks")
[ "$rows_after" -ge "$rows_before" ] || fail "rows lost"
"$WATCHPOST" report --database "$DB" --format csv >"$T/r2.csv" ||
    fail "report after stop failed"
[ "$(wc -l <"$T/r2.csv")" -eq 3 ] || fail "report after stop: $(cat "$T/r2.csv")"
# Every stored row is counted once in the roll-ups, and every failed one
# as down (retries = 0: each failure left the monitor down).
for m in flip steady; do
	want=$(sql "$DB" "SELECT count(*) || ',' || sum(ok = 0) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$m'")
	got=$(grep "^$m," "$T/r2.csv" | cut -d, -f4,5)
	[ "$got" = "$want" ] || fail "$m: roll-ups count $got, rows $want"
done
ok "report exit codes; report with the agent stopped"

# With a token, the history routes need it too; the history survives the
# restart.
printf 's3cret-token\n' >"$T/token"
chmod 600 "$T/token"
sed -i 's/^listen = 127.0.0.1:0$/listen = 127.0.0.1:0\napi_token_file = token/' "$T/agent.ini"
start_agent "$T/agent.ini"
[ "$(code /api/monitors/flip/incidents)" = 401 ] || fail "no token: not 401"
body=$(curl -fsS -H 'Authorization: Bearer s3cret-token' "$API/api/monitors/flip/incidents")
echo "$body" | grep -q '"end":[0-9]' || fail "after restart: $body"
stop_agent
ok "history routes need the token; history survives a restart"
