#!/bin/bash
# The http check's json assertions against the real daemon and the test
# server: a body whose assertions all hold is UP; the first that fails is
# DOWN with reason keyword and its detail stored in SQLite (what was found,
# never the body); a body that is no JSON, and one cut by max_body, are
# DOWN saying so.  Then -t: a bad assertion is a FILE:LINE error.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd plain
DB="$T/agent.db"
# {"status":"ok","items":[1,2,3],"version":"1.2","db":{"latency_ms":4.5}}
J='%7B%22status%22%3A%22ok%22%2C%22items%22%3A%5B1%2C2%2C3%5D%2C%22version%22%3A%221.2%22%2C%22db%22%3A%7B%22latency_ms%22%3A4.5%7D%7D'
URL="http://127.0.0.1:$plain_PORT/text?t=$J"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:good]
type = http
url = $URL
interval = 300ms
json = \$.status == "ok"
json = \$.items.length > 2
json = \$.version exists
json = \$.db.latency_ms < 100
json = \$.error !exists

[monitor:wrong]
type = http
url = $URL
interval = 300ms
json = \$.status == "ok"
json = \$.items[0] == 7
json = \$.version exists

[monitor:html]
type = http
url = http://127.0.0.1:$plain_PORT/body/notjson
interval = 300ms
json = \$.status exists

[monitor:cut]
type = http
url = $URL
interval = 300ms
max_body = 20
json = \$.status == "ok"
INI
"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || fail "-t: $(cat "$T/t.out")"
start_agent "$T/agent.ini"
EXPECT=up wait_until 15 is state_of good || fail "good is not up"
for m in wrong html cut; do
	EXPECT=down wait_until 15 is state_of $m || fail "$m is not down"
done
err_of() { sql "$DB" "SELECT k.reason || ' | ' || k.error FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = '$1' AND k.ok = 0 ORDER BY k.id DESC LIMIT 1"; }
[ "$(err_of wrong)" = 'keyword | json: $.items[0] == 7: found 1' ] ||
    fail "wrong's stored detail: $(err_of wrong)"
case "$(err_of html)" in
'keyword | json: the body is not JSON (line 1'*) ;;
*) fail "html's stored detail: $(err_of html)" ;;
esac
[ "$(err_of cut)" = 'keyword | json: not evaluated: the body is larger than max_body (20 bytes)' ] ||
    fail "cut's stored detail: $(err_of cut)"
[ "$(sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'good' AND k.ok = 0")" = 0 ] ||
    fail "good failed a check"
if sql "$DB" "SELECT error FROM checks WHERE error IS NOT NULL" | grep -q '"items"'; then
	fail "a detail quotes the body"
fi
stop_agent
ok "json: all hold UP; the first failing named with what was found; not JSON and cut bodies DOWN"

cat >"$T/bad.ini" <<'INI'
[agent]
database = bad.db

[monitor:b]
type = http
url = http://127.0.0.1:9/
json = $.status == ok
json = status exists
method = HEAD
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/bad.err" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "-t with bad assertions exited $rc: $(cat "$T/bad.err")"
grep -q "bad.ini:[0-9]*: json: the value is not JSON" "$T/bad.err" || fail "-t: bad value: $(cat "$T/bad.err")"
grep -q "bad.ini:[0-9]*: json: a path starts with '\\$'" "$T/bad.err" || fail "-t: bad path: $(cat "$T/bad.err")"
grep -q "bad.ini:[0-9]*: method: keyword, keyword_absent and json need a body" "$T/bad.err" || fail "-t: HEAD: $(cat "$T/bad.err")"
ok "-t: bad json assertions and HEAD with json are FILE:LINE errors"
