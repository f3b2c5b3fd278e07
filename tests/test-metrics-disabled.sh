#!/bin/bash
# A disabled monitor exports no per-monitor series on /metrics: neither when
# it starts disabled nor after a reload disables a monitor that was up (its
# last watchpost_monitor_up must not stay behind).
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
conf() { # conf ENABLED-OF-web
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 300ms
enabled = $1

[monitor:off]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 300ms
enabled = false
INI
}
conf true
start_agent "$T/agent.ini"

web_up() { [ "$(metric 'watchpost_monitor_up{monitor="web",type="http"}')" = 1 ]; }
wait_until 20 web_up || fail "web never exported up"
curl -fsS "$API/metrics" >"$T/metrics.txt" || fail "/metrics"
grep -q '^watchpost_monitor_[a-z_]*{monitor="off"' "$T/metrics.txt" &&
    fail "a disabled monitor exports series"
ok "a monitor disabled at start exports no per-monitor series"

conf false
kill -HUP "$AGENT_PID"
applied() { grep -q 'reload applied' "$T/agent.log"; }
wait_until 10 applied || fail "reload not applied"
curl -fsS "$API/metrics" >"$T/metrics.txt" || fail "/metrics"
grep -q '^watchpost_monitor_[a-z_]*{monitor="web"' "$T/metrics.txt" &&
    fail "a monitor disabled by reload still exports series"
stop_agent
ok "a monitor disabled by a reload stops exporting its last watchpost_monitor_up"
