#!/bin/bash
# Silences (POST/GET/DELETE /api/silences) against the real daemon: without
# api_token_file a mutation is refused with 403 saying how to enable it;
# with one, a bad token is 401 and bad input a 422 error list.  A silence
# holds a monitor's alerts (state maintenance, checks stored flagged),
# survives a restart (the silences and holds tables), and DELETE releases:
# the DOWN alert that was held goes out then, once.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd target --hook-status-file "$T/target.status"
start_httpd hook --record "$T/hook.jsonl"
echo 200 >"$T/target.status"
DB="$T/agent.db"

write_ini() { # write_ini [TOKEN-LINE]
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
$1

[monitor:c]
type = http
url = http://127.0.0.1:$target_PORT/hook
interval = 200ms
timeout = 2s
retries = 0

[monitor:other]
type = http
url = http://127.0.0.1:$target_PORT/status/200
interval = 1s
timeout = 2s
retries = 0

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI
}
alerts_of() { cat "$T/hook.jsonl" 2>/dev/null | grep -c "\"monitor\": *\"$1\"" || true; }
down_alerts_of() { cat "$T/hook.jsonl" 2>/dev/null | grep "\"monitor\": *\"$1\"" | grep -c '"state": *"down"' || true; }
AUTH=()
api_state() { curl -fsS "${AUTH[@]}" "$API/api/monitors" | jq -r ".[] | select(.name == \"$1\") | .state"; }
state_metric() { curl -fsS "${AUTH[@]}" "$API/metrics" | sed -n "s/^watchpost_monitor_state{monitor=\"$1\",type=\"http\",state=\"$2\"} //p"; }
code() { # code METHOD PATH [BODY] [AUTH]: prints the HTTP status
	local args=(-s -o "$T/answer.json" -w '%{http_code}' -X "$1")
	[ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
	[ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
	curl "${args[@]}" "$API$2"
}

# 1. No token file: mutations are refused, reads work.
write_ini ""
start_agent "$T/agent.ini"
EXPECT=up wait_until 15 is state_of c || fail "c did not come up"
[ "$(code POST /api/silences '{"monitors":["c"],"duration":"1h"}')" = 403 ] ||
    fail "POST without api_token_file: $(cat "$T/answer.json")"
grep -q 'api_token_file' "$T/answer.json" ||
    fail "the 403 does not say how to enable mutations: $(cat "$T/answer.json")"
[ "$(code DELETE /api/silences/1)" = 403 ] || fail "DELETE without a token file was not 403"
[ "$(code GET /api/silences)" = 200 ] || fail "GET /api/silences failed"
[ "$(jq length "$T/answer.json")" = 0 ] || fail "silences listed from nowhere"
[ "$(sql "$DB" 'SELECT count(*) FROM silences')" = 0 ] || fail "a refused POST was stored"
ok "without api_token_file: POST and DELETE 403 naming api_token_file, GET 200"
stop_agent

# 2. With a token.
printf 's3cret-token\n' >"$T/token"
chmod 600 "$T/token"
write_ini "api_token_file = token"
start_agent "$T/agent.ini"
TOK=s3cret-token
AUTH=(-H "Authorization: Bearer $TOK")
[ "$(code POST /api/silences '{"monitors":["c"],"duration":"1h"}')" = 401 ] ||
    fail "POST without the token was not 401"
[ "$(code POST /api/silences '{"monitors":["c"],"duration":"1h"}' wrong)" = 401 ] ||
    fail "POST with a wrong token was not 401"
[ "$(code POST /api/silences '{"monitors":[],"until":"yesterday","x":1}' $TOK)" = 422 ] ||
    fail "bad input was not 422: $(cat "$T/answer.json")"
keys=$(jq -r '[.errors[].key] | sort | join(",")' "$T/answer.json")
[ "$keys" = "monitors,until,x" ] || fail "422 errors name the keys $keys"
[ "$(code POST /api/silences 'not json' $TOK)" = 422 ] || fail "non-JSON was not 422"
[ "$(code POST /api/silences '{"monitors":["c"],"until":1000}' $TOK)" = 422 ] ||
    fail "a silence ending in the past was accepted"
big=$(head -c 70000 /dev/zero | tr '\0' 'x')
[ "$(code POST /api/silences "{\"comment\":\"$big\"}" $TOK)" = 413 ] ||
    fail "a body over the cap was not 413"
[ "$(sql "$DB" 'SELECT count(*) FROM silences')" = 0 ] || fail "rejected input was stored"
ok "401 without or with a wrong token; 422 with an error per key; 413 past the cap"

EXPECT=up wait_until 15 is state_of c || fail "c did not come up"
[ "$(code POST /api/silences '{"monitors":["c"],"duration":"1h","comment":"deploy"}' $TOK)" = 201 ] ||
    fail "POST /api/silences: $(cat "$T/answer.json")"
id=$(jq -r .id "$T/answer.json")
[ "$id" = 1 ] || fail "the first silence has id $id"
[ "$(jq -r .comment "$T/answer.json")" = deploy ] || fail "the comment was not kept"
EXPECT=1 wait_until 10 is sql "$DB" "SELECT count(*) FROM silences WHERE id = 1 AND comment = 'deploy'" ||
    fail "the silence did not reach the database"
EXPECT=maintenance wait_until 10 is api_state c || fail "c is not shown in maintenance"
EXPECT=up wait_until 10 is api_state other || fail "other is not up"
EXPECT=1 wait_until 10 is state_metric c maintenance ||
    fail "watchpost_monitor_state does not say maintenance"
ok "POST: 201 with id 1, stored, c shown as maintenance (API and metrics)"

# c goes down while silenced: recorded, not alerted.
echo 500 >"$T/target.status"
EXPECT=down wait_until 15 is state_of c || fail "c did not go down"
wait_until 15 at_least 3 sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'c' AND k.ok = 0 AND k.maintenance = 1" ||
    fail "c's failed checks are not stored flagged"
[ "$(alerts_of c)" = 0 ] || fail "a silenced monitor alerted: $(cat "$T/hook.jsonl")"
[ "$(api_state c)" = maintenance ] || fail "c is not shown in maintenance while down"
ok "silenced: c went DOWN, its checks are stored flagged, no alert"

# 3. A restart keeps the silence and what it held.
stop_agent
start_agent "$T/agent.ini"
[ "$(code GET /api/silences '' $TOK)" = 200 ] || fail "GET after the restart"
[ "$(jq -r '.[0].id' "$T/answer.json")" = 1 ] || fail "the silence did not survive the restart"
[ "$(code GET /api/silences/1 '' $TOK)" = 200 ] || fail "GET /api/silences/1"
[ "$(jq -r '.monitors[0]' "$T/answer.json")" = c ] || fail "GET /api/silences/1 lost the patterns"
EXPECT=maintenance wait_until 10 is api_state c || fail "c is not held after the restart"
n0=$(sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'c'")
wait_until 15 at_least $((n0 + 3)) sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'c'" ||
    fail "c is not checked after the restart"
[ "$(alerts_of c)" = 0 ] || fail "c alerted after the restart"
ok "after a restart the silence is listed and still holds c"

# 4. DELETE releases: c is still DOWN, so its DOWN alert goes out, once.
[ "$(code DELETE /api/silences/1 '' $TOK)" = 204 ] || fail "DELETE /api/silences/1"
[ "$(code DELETE /api/silences/1 '' $TOK)" = 404 ] || fail "a second DELETE was not 404"
[ "$(code DELETE /api/silences/99 '' $TOK)" = 404 ] || fail "DELETE of an unknown id was not 404"
EXPECT=1 wait_until 15 is alerts_of c || fail "no alert after DELETE released c"
[ "$(down_alerts_of c)" = 1 ] || fail "the released alert is not c's DOWN"
grep '"monitor": *"c"' "$T/hook.jsonl" | grep -q '"previous_state": *"up"' ||
    fail "the released alert does not come from up"
EXPECT=0 wait_until 10 is sql "$DB" 'SELECT count(*) FROM silences' || fail "the deleted silence stayed in the database"
EXPECT=down wait_until 10 is api_state c || fail "c is not shown down after DELETE"
n0=$(sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'c' AND k.maintenance = 0")
wait_until 15 at_least $((n0 + 3)) sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'c' AND k.maintenance = 0" ||
    fail "checks after DELETE are still flagged"
[ "$(alerts_of c)" = 1 ] || fail "c alerted more than once"
ok "DELETE: 204, then 404; c's held DOWN alert went out once, from up"

# 5. Recovery alerts normally again.
echo 200 >"$T/target.status"
EXPECT=2 wait_until 15 is alerts_of c || fail "no UP alert after the silence"
[ "$(alerts_of other)" = 0 ] || fail "other alerted"
stop_agent
ok "after the silence c's UP alert goes out as usual"
