#!/bin/bash
# The default http check reuses connections, for a bounded time
# (keepalive_lifetime), against the real daemon and tests/testhttpd on
# loopback:
#   - checks reuse connections (fewer connections than checks), and still
#     open a new one at the documented rate (a monitor at 1 s with a 3 s
#     lifetime: a new connection at least every third check);
#   - a server that stops accepting new connections (testhttpd on SIGUSR1
#     closes its listening socket and goes on serving the connections it
#     has) is caught: fewer than lifetime / interval checks still pass on
#     old connections, then the monitor is DOWN, "connection refused";
#   - keepalive = false opens a connection per check;
#   - keepalive_lifetime below 2 s is refused by -t.
# Counts only, no timing assertion: the bound is stated in checks.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
start_httpd fresh
DB="$T/wp.db"

cat >"$T/short.ini" <<INI
[monitor:m]
type = http
url = http://127.0.0.1:1/
keepalive_lifetime = 1s
INI
out=$("$WATCHPOST" -t -c "$T/short.ini" -P "$PLUGINS" 2>&1) &&
    fail "-t accepted keepalive_lifetime = 1s"
grep -q 'short.ini:4: .*keepalive_lifetime' <<<"$out" ||
    fail "-t did not name keepalive_lifetime on line 4: $out"
ok "-t refuses keepalive_lifetime = 1s (FILE:LINE)"

cat >"$T/ka.ini" <<INI
[agent]
database = wp.db
listen = off

[monitor:reuse]
type = http
url = http://127.0.0.1:$web_PORT/body/ok
interval = 1s
timeout = 2s
retries = 0
keepalive_lifetime = 3s

[monitor:fresh]
type = http
url = http://127.0.0.1:$fresh_PORT/body/ok
interval = 1s
timeout = 2s
retries = 0
keepalive = false
INI
"$WATCHPOST" -t -c "$T/ka.ini" -P "$PLUGINS" >/dev/null 2>&1 ||
    fail "-t rejected the configuration"
start_agent "$T/ka.ini"

# checks NAME [OK]: NAME's stored checks (only the UP ones with OK 1, only
# the DOWN ones with OK 0).
checks() {
	sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON
	    m.id = c.monitor_id WHERE m.name = '$1' ${2:+AND c.ok = $2}" \
	    2>/dev/null
}
# conns PORT: connections the server accepted, less this query's own.
conns() {
	local n
	n=$(curl -fsS "http://127.0.0.1:$1/connections" | tr -dc '0-9')
	echo $((n - 1))
}

# 13: the thirteenth check is normally one on a new connection (the
# first, fourth, ... are), so the stop below falls where old connections
# are still in use and checks still pass on them.
wait_until 40 at_least 13 checks reuse 1 || fail "13 UP checks did not come"
wait_until 10 at_least 12 checks fresh 1 || fail "fresh: no 12 UP checks"
n=$(checks reuse)
c=$(conns "$web_PORT")
[ "$(checks reuse 0)" = 0 ] || fail "reuse: a check failed before the stop"
# At least one new connection every third check (an UP check on a new
# one, then at most two on it: 1 s + 1 s is within 3 s, 3 s is not), and
# reuse: fewer connections than checks.  One check may be in flight.
[ $((c * 3)) -ge $((n - 2)) ] ||
    fail "reuse: $c connections for $n checks: fewer than one per 3 checks"
[ "$c" -le $((n - 4)) ] ||
    fail "reuse: $c connections for $n checks: connections are not reused"
ok "reuse: $c connections for $n checks"
nf=$(checks fresh)
cf=$(conns "$fresh_PORT")
[ "$cf" -ge "$nf" ] ||
    fail "keepalive = false: $cf connections for $nf checks"
ok "keepalive = false: $cf connections for $nf checks"

# The server stops accepting new connections; the ones it has go on.
kill -USR1 "$web_PID"
wait_until 10 grep -q '^QUIESCED$' "$T/web.log" ||
    fail "testhttpd did not stop accepting"
port_open "$web_PORT" && fail "the port still accepts connections"
up0=$(checks reuse 1)
wait_until 30 at_least 1 checks reuse 0 ||
    fail "a server that stopped accepting was not caught"
up1=$(checks reuse 1)
# At most two checks after the last new connection pass on it, and one
# may have been in flight when the server stopped.
[ $((up1 - up0)) -le 3 ] ||
    fail "$((up1 - up0)) checks passed after the server stopped accepting"
err=$(sql "$DB" "SELECT c.error FROM checks c JOIN monitors m ON
    m.id = c.monitor_id WHERE m.name = 'reuse' AND c.ok = 0
    ORDER BY c.id LIMIT 1")
[ "$err" = "connection refused" ] || fail "first DOWN check said: $err"
ok "stopped accepting: caught after $((up1 - up0)) more UP checks ($err)"
# And it stays DOWN: every check after a failure connects afresh.
down0=$(checks reuse 0)
wait_until 10 at_least $((down0 + 2)) checks reuse 0 ||
    fail "no further DOWN checks"
[ "$(checks reuse 1)" = "$up1" ] || fail "an UP check after the first DOWN"
ok "DOWN from then on"
stop_agent
