#!/bin/bash
# The built-in plugins through `watchpost --once`: the same code path as the
# daemon.  Retries are counted on the server side.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
cat >"$T/once.ini" <<INI
[agent]
listen = off

[monitor:page]
type = http
url = http://127.0.0.1:$web_PORT/status/200
keyword_absent = error

[monitor:broken-page]
type = http
url = http://127.0.0.1:$web_PORT/status/503
retries = 2
retry_interval = 100ms

[monitor:port]
type = tcp
host = 127.0.0.1
port = $web_PORT

[monitor:v6]
type = ping
host = ::1

[monitor:v4]
type = ping
host = 127.0.0.1
INI
rc=0
"$WATCHPOST" --once -c "$T/once.ini" -P "$PLUGINS" >"$T/out" 2>"$T/err.log" || rc=$?
cat "$T/out"
[ "$rc" -eq 2 ] || fail "one DOWN monitor: exit 2, got $rc"
grep -Eq "^page +http +UP .*status 200" "$T/out" || fail "http UP line"
grep -Eq "^broken-page +http +DOWN .*status: HTTP 503" "$T/out" || fail "http DOWN line"
grep -Eq "^port +tcp +UP " "$T/out" || fail "tcp UP line"
grep -Eq "^v6 +ping +UP " "$T/out" || fail "ping ::1 UP line"
grep -Eq "^v4 +ping +UP " "$T/out" || fail "ping 127.0.0.1 UP line"
hits=$(curl -fsS "http://127.0.0.1:$web_PORT/hits?path=/status/503")
[ "$hits" = 3 ] || fail "retries = 2 means 3 requests on the server, saw $hits"
ok "--once runs http, tcp and ping; retries counted by the server"

rc=0
"$WATCHPOST" --once -c "$T/once.ini" -P "$PLUGINS" page port v4 >"$T/out" || rc=$?
[ "$rc" -eq 0 ] || fail "named UP monitors: exit 0, got $rc"
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "one line per named monitor"
ok "--once NAME... exits 0 when all are UP"
