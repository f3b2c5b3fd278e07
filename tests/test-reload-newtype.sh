#!/bin/bash
# SIGHUP naming a type whose plugin appeared in plugin_dir after start-up
# (issue 13, item 5): plugins are loaded and initialised at start-up only,
# so the reload is rejected with a FILE:LINE message saying a restart is
# needed, and the running monitors keep their schedule.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
DB="$T/agent.db"
# A plugin folder of our own (the loader refuses one others may write to)
# holding only tcp at start-up.
mkdir -m 755 "$T/plugins"
cp "$PLUGINS/tcp.so" "$T/plugins/"

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:web]
type = tcp
host = 127.0.0.1
port = $web_PORT
interval = 200ms
INI
start_agent "$T/agent.ini" -P "$T/plugins"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "the agent did not start"
checks() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'web' AND c.ok = 1"; }
wait_until 15 at_least 1 checks || fail "web is not checked"

# The new type's plugin arrives after start-up, and a section names it.
cp "$TEST_PLUGINS/blocking.so" "$T/plugins/"
cat >>"$T/agent.ini" <<INI

[monitor:late]
type = blocking
INI
kill -HUP "$AGENT_PID"
wait_until 10 grep -q "reload rejected" "$T/agent.log" ||
    fail "the reload naming a new type was not rejected"
grep -q "agent.ini:12: .*\"blocking\": not loaded at start-up (a new plugin needs a restart): $T/plugins/blocking.so" \
    "$T/agent.log" || fail "no FILE:LINE message saying a restart is needed"
grep -q "reload applied" "$T/agent.log" && fail "the reload was applied"
ok "SIGHUP naming a plugin added after start-up: FILE:LINE, restart needed"

# The running configuration stays: web keeps being checked, late never is.
n=$(checks)
wait_until 15 at_least $((n + 3)) checks ||
    fail "web stopped being checked after the rejected reload"
[ "$(sql "$DB" "SELECT count(*) FROM monitors WHERE name = 'late'")" = 0 ] ||
    fail "the rejected monitor reached the database"
curl -fsS "$API/api/monitors" | grep -q '"name":"late"' &&
    fail "the rejected monitor is running"
stop_agent
ok "the old monitors keep running; clean stop"
