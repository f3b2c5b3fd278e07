#!/bin/bash
# The live admin API (issue 15, item 1) against the real daemon: PUT,
# PATCH, DELETE, pause, resume and check of the monitors the API keeps in
# [agent] include; 422 lists, 412 on a stale If-Match, 409 for a monitor of
# the main file, 403 without a token file, 401 with a wrong token, 413;
# an injection attempt in a JSON value; and a restart after it all comes
# back with exactly the same monitors.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
DB="$T/agent.db"
mkdir "$T/conf.d"
TOKEN=admin-test-token
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
AUTH="Authorization: Bearer $TOKEN"

# write_conf [TOKEN_LINE]
write_conf() {
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
include = conf.d
${1-api_token_file = token}

[monitor:mainmon]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 1s
INI
}

# call METHOD PATH [BODY [HEADER...]]: prints the status; body in $T/out,
# headers in $T/hdr.
call() {
	local method=$1 path=$2 body=${3-} h=()
	shift 2
	[ $# -gt 0 ] && shift
	for x in "$@"; do h+=(-H "$x"); done
	curl -s --max-time 20 -o "$T/out" -D "$T/hdr" -w '%{http_code}' \
	    -X "$method" ${body:+--data-binary "$body"} "${h[@]}" "$API$path"
}
etag_of() { sed -n 's/^ETag: *\(.*\)\r$/\1/Ip' "$T/hdr"; }
names() { curl -fsS -H "$AUTH" "$API/api/monitors" | jq -r '.[].name' | sort | tr '\n' ' '; }

# ---- without a token file, every change answers 403 saying how ----
write_conf ""
start_agent "$T/agent.ini"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "agent did not start"
[ "$(call PUT /api/monitors/x '{"type":"tcp"}')" = 403 ] || fail "PUT without a token file: $(cat "$T/out")"
grep -q 'api_token_file' "$T/out" || fail "403 does not say how to enable changes: $(cat "$T/out")"
[ "$(call POST /api/monitors/mainmon/check)" = 403 ] || fail "check without a token file"
[ ! -e "$T/conf.d/x.ini" ] || fail "a refused PUT wrote a file"
[ "$(call GET /api/monitors/mainmon)" = 200 ] || fail "GET one monitor without a token"
ok "no token file: changes answer 403 naming api_token_file; reads work"
stop_agent

write_conf
start_agent "$T/agent.ini"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "agent did not start"

# ---- 401 with a wrong or missing token ----
[ "$(call PUT /api/monitors/x '{"type":"tcp"}' 'Authorization: Bearer wrong')" = 401 ] ||
    fail "a wrong token was not refused"
[ "$(call DELETE /api/monitors/mainmon)" = 401 ] || fail "no token was not refused"
[ "$(call GET /api/monitors/mainmon)" = 401 ] || fail "a read without the token"
ok "a wrong or missing token answers 401"

# ---- PUT creates, then replaces ----
body='{"type":"http","url":"http://127.0.0.1:'$web_PORT'/status/200","interval":"1s","header":["X-A: 1","X-B: 2"]}'
[ "$(call PUT /api/monitors/api1 "$body" "$AUTH")" = 201 ] || fail "PUT create: $(cat "$T/out")"
tag1=$(etag_of)
[ -n "$tag1" ] || fail "no ETag on 201"
[ "$(jq -r .name "$T/out")" = api1 ] || fail "201 body names another monitor"
[ "$(jq -r '.definition.header | length' "$T/out")" = 2 ] || fail "repeatable key not an array"
cat >"$T/want.ini" <<INI
[monitor:api1]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 1s
header = X-A: 1
header = X-B: 2
INI
cmp -s "$T/want.ini" "$T/conf.d/api1.ini" || fail "file content: $(cat "$T/conf.d/api1.ini")"
ls -A "$T/conf.d" | grep -q '^\.' && fail "a temporary file was left: $(ls -A "$T/conf.d")"
[ "$(names)" = "api1 mainmon " ] || fail "/api/monitors: $(names)"
EXPECT=up
api_state() { curl -fsS -H "$AUTH" "$API/api/monitors/$1" | jq -r .state; }
wait_until 20 is api_state api1 || fail "api1 never came up"
[ "$(call PUT /api/monitors/api1 "$body" "$AUTH")" = 200 ] || fail "PUT replace: $(cat "$T/out")"
[ "$(etag_of)" = "$tag1" ] || fail "same content, different ETag"
ok "PUT creates (201 + ETag, file written canonically) and replaces (200)"

# ---- secrets are masked in answers (they are in the file, mode 0600) ----
sec='{"type":"http","url":"http://user:s3cr3t-pw@127.0.0.1:'$web_PORT'/status/200","interval":"1h","header":"Authorization: Bearer s3cr3t-hdr"}'
[ "$(call PUT /api/monitors/sec "$sec" "$AUTH")" = 201 ] || fail "PUT sec: $(cat "$T/out")"
[ "$(call GET /api/monitors/sec "" "$AUTH")" = 200 ] || fail "GET sec"
grep -q 's3cr3t' "$T/out" && fail "a secret in the answer: $(cat "$T/out")"
[ "$(jq -r .definition.header "$T/out")" = '********' ] || fail "header not masked: $(cat "$T/out")"
[ "$(jq -r .definition.url "$T/out")" = "http://user:********@127.0.0.1:$web_PORT/status/200" ] ||
    fail "URL password not masked: $(cat "$T/out")"
[ "$(stat -c %a "$T/conf.d/sec.ini")" = 600 ] || fail "sec.ini is not mode 600"
grep -q 's3cr3t' "$T/agent.log" && fail "a secret in the log"
[ "$(call DELETE /api/monitors/sec "" "$AUTH")" = 204 ] || fail "DELETE sec"
ok "GET masks secret keys and URL passwords; the file is mode 600; the log holds none"

# ---- 422 lists every problem, with its key; nothing is written ----
before=$(cat "$T/conf.d/api1.ini")
[ "$(call PUT /api/monitors/api1 '{"type":"http","url":"not a url","interval":"-5","bogus":1}' "$AUTH")" = 422 ] ||
    fail "bad PUT: $(cat "$T/out")"
keys=$(jq -r '[.errors[].key] | sort | join(",")' "$T/out")
[ "$keys" = "bogus,interval,url" ] || fail "422 keys: $keys ($(cat "$T/out"))"
[ "$(cat "$T/conf.d/api1.ini")" = "$before" ] || fail "a rejected PUT changed the file"
[ "$(call PUT /api/monitors/api2 '{"url":"http://127.0.0.1:1/"}' "$AUTH")" = 422 ] || fail "missing type accepted"
jq -e '.errors | length >= 1' "$T/out" >/dev/null || fail "no error for a missing type"
[ ! -e "$T/conf.d/api2.ini" ] || fail "a rejected PUT left a file"
[ "$(call PUT /api/monitors/api2 '{"type": ' "$AUTH")" = 400 ] || fail "broken JSON: not 400"
[ "$(call PUT /api/monitors/api2 '["type"]' "$AUTH")" = 422 ] || fail "a JSON array accepted"
ok "422 lists key/message for every problem; broken JSON is 400; nothing written"

# ---- injection: nothing in a value or key can make a new line ----
for evil in '{"type":"tcp","host":"127.0.0.1\n[monitor:evil]\ntype = tcp","port":1}' \
    '{"type":"tcp","host":"127.0.0.1","port":"1\r\nretries = 0"}' \
    '{"type":"tcp","host":"127.0.0.1","port":1,"a=b":"c"}' \
    '{"type":"tcp","host":"127.0.0.1","port":1,"[monitor:evil]":"x"}' \
    '{"type":"tcp","host":"127.0.0.1 ;x","port":1}' \
    '{"type":"tcp","host":"127.0.0.1\u0000x","port":1}'; do
	code=$(call PUT /api/monitors/inj "$evil" "$AUTH")
	[ "$code" = 422 ] || [ "$code" = 400 ] || fail "injection accepted ($code): $evil"
done
[ ! -e "$T/conf.d/inj.ini" ] || fail "an injection attempt wrote a file"
names | grep -q evil && fail "an injection attempt created a monitor"
ok "newlines, '=' and '[' in keys, ' ;' and NUL in values are refused"

# ---- PATCH merges; If-Match: 412 when stale ----
[ "$(call GET /api/monitors/api1 "" "$AUTH")" = 200 ] || fail "GET api1"
tag=$(etag_of)
[ "$tag" = "$tag1" ] || fail "GET's ETag differs from PUT's"
[ "$(call PATCH /api/monitors/api1 '{"interval":"2s","header":null}' "$AUTH" 'If-Match: "0123456789abcdef"')" = 412 ] ||
    fail "stale If-Match not refused: $(cat "$T/out")"
[ "$(cat "$T/conf.d/api1.ini")" = "$before" ] || fail "a 412 changed the file"
[ "$(call PATCH /api/monitors/api1 '{"interval":"2s","header":null}' "$AUTH" "If-Match: $tag")" = 200 ] ||
    fail "PATCH: $(cat "$T/out")"
tag2=$(etag_of)
[ "$tag2" != "$tag" ] || fail "ETag unchanged after a change"
grep -q '^interval = 2s$' "$T/conf.d/api1.ini" || fail "PATCH not written"
grep -q '^header' "$T/conf.d/api1.ini" && fail "null did not remove the key"
grep -q '^url = ' "$T/conf.d/api1.ini" || fail "PATCH lost a key"
[ "$(jq -r .interval_ms "$T/out")" = 2000 ] || fail "PATCH not applied: $(cat "$T/out")"
[ "$(call PATCH /api/monitors/api1 '{"interval":"3s"}' "$AUTH" "If-Match: $tag")" = 412 ] ||
    fail "the old ETag still matched"
[ "$(call PATCH /api/monitors/nosuch '{"interval":"3s"}' "$AUTH")" = 404 ] || fail "PATCH of nothing"
ok "PATCH merges (null removes), If-Match honoured: 412 on a stale tag"

# ---- 409 for a monitor of the main file, naming FILE:LINE ----
line=$(grep -n '^\[monitor:mainmon\]' "$T/agent.ini" | cut -d: -f1)
for req in "PUT /api/monitors/mainmon" "PATCH /api/monitors/mainmon" \
    "DELETE /api/monitors/mainmon" "POST /api/monitors/mainmon/pause"; do
	[ "$(call ${req% *} ${req#* } '{"interval":"5s"}' "$AUTH")" = 409 ] || fail "$req: not 409"
	grep -q "agent.ini:$line" "$T/out" || fail "$req: 409 does not name agent.ini:$line: $(cat "$T/out")"
done
ok "a main-file monitor answers 409 naming agent.ini:$line"

# ---- pause and resume persist `enabled` ----
[ "$(call POST /api/monitors/api1/pause "" "$AUTH")" = 200 ] || fail "pause: $(cat "$T/out")"
[ "$(jq -r .state "$T/out")" = paused ] || fail "not paused: $(cat "$T/out")"
grep -q '^enabled = false$' "$T/conf.d/api1.ini" || fail "pause not in the file"
[ "$(call POST /api/monitors/api1/resume "" "$AUTH")" = 200 ] || fail "resume"
grep -q '^enabled = true$' "$T/conf.d/api1.ini" || fail "resume not in the file"
[ "$(call POST /api/monitors/api1/pause "" "$AUTH")" = 200 ] || fail "pause again"
ok "pause and resume persist enabled in the file; state paused"

# ---- check now answers with its result ----
[ "$(call POST /api/monitors/mainmon/check "" "$AUTH")" = 200 ] || fail "check: $(cat "$T/out")"
[ "$(jq -r .state "$T/out")" = up ] || fail "check result: $(cat "$T/out")"
jq -e '.latency_ms >= 0 and .status_code == 200' "$T/out" >/dev/null || fail "check result: $(cat "$T/out")"
[ "$(call PUT /api/monitors/down1 '{"type":"tcp","host":"127.0.0.1","port":1,"retries":0,"interval":"1h"}' "$AUTH")" = 201 ] ||
    fail "PUT down1"
[ "$(call POST /api/monitors/down1/check "" "$AUTH")" = 200 ] || fail "check down1"
[ "$(jq -r '.state + " " + .reason' "$T/out")" = "down refused" ] || fail "check down1: $(cat "$T/out")"
[ "$(call POST /api/monitors/nosuch/check "" "$AUTH")" = 404 ] || fail "check of nothing"
ok "POST check runs one check now and answers with its result (up and down)"

# ---- 413 and bad names ----
big=$(head -c 70000 /dev/zero | tr '\0' a)
[ "$(call PUT /api/monitors/big "{\"type\":\"$big\"}" "$AUTH")" = 413 ] || fail "a 70 kB body"
[ "$(call PUT "/api/monitors/$(head -c 129 /dev/zero | tr '\0' n)" '{"type":"tcp"}' "$AUTH")" = 400 ] ||
    fail "a 129-character name"
[ "$(call PUT '/api/monitors/a%20b' '{"type":"tcp"}' "$AUTH")" = 400 ] || fail "a name with a blank"
[ "$(call PUT /api/monitors/.hidden '{"type":"tcp"}' "$AUTH")" = 400 ] || fail "a hidden file name"
ok "413 for a body over 64 KiB; names checked like section names"

# ---- DELETE removes the file, keeps the history ----
rows() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'down1'"; }
wait_until 10 at_least 1 rows || fail "down1's check never stored"
n=$(rows)
[ "$(call DELETE /api/monitors/down1 "" "$AUTH")" = 204 ] || fail "DELETE: $(cat "$T/out")"
[ ! -e "$T/conf.d/down1.ini" ] || fail "DELETE left the file"
names | grep -q down1 && fail "down1 still running"
[ "$(rows)" = "$n" ] || fail "DELETE lost history"
[ "$(call DELETE /api/monitors/down1 "" "$AUTH")" = 404 ] || fail "second DELETE"
ok "DELETE: 204, file removed, history kept"

# ---- restart: exactly the same monitors ----
snap() {
	curl -fsS -H "$AUTH" "$API/api/monitors" |
	    jq -S '[.[] | {name, type, interval_ms, paused: (.state == "paused")}] | sort_by(.name)'
}
snap >"$T/before.json"
stop_agent
"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || fail "-t after the API: $(cat "$T/t.out")"
start_agent "$T/agent.ini"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "agent did not restart"
snap >"$T/after.json"
cmp -s "$T/before.json" "$T/after.json" || fail "restart changed the monitors: $(diff "$T/before.json" "$T/after.json")"
[ "$(jq length "$T/after.json")" = 2 ] || fail "expected 2 monitors: $(cat "$T/after.json")"
ok "a restart after the API comes back with exactly the same monitors"

# ---- include duplicates at -t name both places ----
printf '[monitor:mainmon]\ntype = tcp\nhost = 127.0.0.1\nport = 1\n' >"$T/conf.d/zz.ini"
if "$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1; then
	fail "-t accepted a duplicate across files"
fi
grep -q "conf.d/zz.ini:1: duplicate monitor name \"mainmon\" (first defined at $T/agent.ini:$line)\|conf.d/zz.ini:1: duplicate monitor name \"mainmon\" (first defined at .*agent.ini:$line)" "$T/t.out" ||
    fail "duplicate message: $(cat "$T/t.out")"
# A PUT while the folder holds a broken file says so, and writes nothing.
[ "$(call PUT /api/monitors/api3 '{"type":"tcp","host":"127.0.0.1","port":1}' "$AUTH")" = 422 ] ||
    fail "PUT over a broken folder: $(cat "$T/out")"
grep -q 'zz.ini:1' "$T/out" || fail "the 422 does not name the broken file: $(cat "$T/out")"
[ ! -e "$T/conf.d/api3.ini" ] || fail "PUT over a broken folder wrote its file"
rm "$T/conf.d/zz.ini"
ok "a duplicate across included files is FILE:LINE naming both at -t and in a PUT's 422"

# ---- a check waited for when the agent stops: answered, clean exit ----
[ "$(call PUT /api/monitors/slow '{"type":"http","url":"http://127.0.0.1:'$web_PORT'/slow?ms=2000","interval":"1h","retries":0}' "$AUTH")" = 201 ] ||
    fail "PUT slow: $(cat "$T/out")"
curl -s --max-time 20 -o /dev/null -w '%{http_code}' -X POST -H "$AUTH" \
    "$API/api/monitors/slow/check" >"$T/slow.code" &
slow_curl=$!
in_flight() { curl -fsS -H "$AUTH" "$API/api/monitor" | jq -e '[.operations[] | select(.name == "slow")] | length > 0'; }
wait_until 10 in_flight || fail "the check of slow never ran"
stop_agent
wait "$slow_curl" || true
case $(cat "$T/slow.code") in
200|503|000) ;;
*) fail "a check waited for at shutdown answered $(cat "$T/slow.code")" ;;
esac
ok "a check waited for at shutdown is answered ($(cat "$T/slow.code")) and the agent exits 0"
