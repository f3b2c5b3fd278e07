#!/bin/bash
# depends_on against the real daemon and a webhook receiver: a cycle is a
# FILE:LINE error at -t; with the parent DOWN only the parent alerts, the
# child's transitions are recorded (state, checks) but its alert is held;
# when the parent recovers with the child still DOWN, the child's DOWN
# alert goes out then, once; a child that recovered meanwhile sends
# nothing.
. "$abs_top_srcdir/tests/lib.sh"

# 1. -t: unknown parents, self-dependency and cycles, at their lines.
cat >"$T/cycle.ini" <<'INI'
[agent]
database = cycle.db

[monitor:a]
type = tcp
host = 127.0.0.1
port = 9
depends_on = b

[monitor:b]
type = tcp
host = 127.0.0.1
port = 9
depends_on = a

[monitor:c]
type = tcp
host = 127.0.0.1
port = 9
depends_on = nosuch
depends_on = c
INI
rc=0
"$WATCHPOST" -t -c "$T/cycle.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "-t with a depends_on cycle exited $rc: $(cat "$T/t.out")"
grep -qx "$T/cycle.ini:14: depends_on: cycle: a -> b -> a" "$T/t.out" ||
    fail "no FILE:LINE cycle error: $(cat "$T/t.out")"
grep -qx "$T/cycle.ini:20: depends_on: unknown monitor \"nosuch\" (there is no \[monitor:nosuch\] section)" "$T/t.out" ||
    fail "no FILE:LINE error for an unknown parent: $(cat "$T/t.out")"
grep -qx "$T/cycle.ini:21: depends_on: a monitor cannot depend on itself" "$T/t.out" ||
    fail "no FILE:LINE error for a self-dependency: $(cat "$T/t.out")"
[ ! -e "$T/cycle.db" ] || fail "-t created the database"
ok "-t: cycle, unknown parent and self-dependency are FILE:LINE errors"

# 2. The daemon.
start_httpd parent --hook-status-file "$T/parent.status"
start_httpd child --hook-status-file "$T/child.status"
start_httpd hook --record "$T/hook.jsonl"
echo 200 >"$T/parent.status"
echo 200 >"$T/child.status"
DB="$T/agent.db"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:switch]
type = http
url = http://127.0.0.1:$parent_PORT/hook
interval = 200ms
timeout = 2s
retries = 0

[monitor:web]
type = http
url = http://127.0.0.1:$child_PORT/hook
interval = 200ms
timeout = 2s
retries = 0
depends_on = switch

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI
alerts() { # alerts MONITOR [STATE]
	cat "$T/hook.jsonl" 2>/dev/null | grep "\"monitor\": *\"$1\"" |
	    grep -c "\"state\": *\"${2:-[a-z]*}\"" || true
}
checks_of() { sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = '$1' AND k.ok = $2"; }

"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || fail "-t refused the file: $(cat "$T/t.out")"
start_agent "$T/agent.ini"
EXPECT=up wait_until 15 is state_of switch || fail "switch did not come up"
EXPECT=up wait_until 15 is state_of web || fail "web did not come up"

# The parent goes down first, then the child: only the parent alerts.
echo 500 >"$T/parent.status"
EXPECT=1 wait_until 15 is alerts switch down || fail "no DOWN alert for switch"
echo 500 >"$T/child.status"
EXPECT=down wait_until 15 is state_of web || fail "web's DOWN was not recorded"
n=$(checks_of web 0)
wait_until 15 at_least $((n + 3)) checks_of web 0 || fail "web's failed checks are not stored"
[ "$(alerts web)" = 0 ] || fail "web alerted while its parent was down: $(cat "$T/hook.jsonl")"
grep -q 'monitor web: DOWN alert held (depends_on switch)' "$T/agent.log" ||
    fail "the held alert is not logged with its reason"
[ "$(sql "$DB" "SELECT count(*) FROM checks k JOIN monitors m ON m.id = k.monitor_id WHERE m.name = 'web' AND k.maintenance = 1")" = 0 ] ||
    fail "a dependency hold flagged checks as maintenance"
ok "parent and child down: only the parent alerted; the child's DOWN is recorded and held"

# The parent recovers while the child is still down: the child's DOWN now.
echo 200 >"$T/parent.status"
EXPECT=1 wait_until 15 is alerts switch up || fail "no UP alert for switch"
EXPECT=1 wait_until 15 is alerts web down || fail "web's held DOWN did not go out when switch recovered"
cat "$T/hook.jsonl" | grep '"monitor": *"web"' | grep -q '"previous_state": *"up"' ||
    fail "web's released alert is not up -> down"
n=$(checks_of web 0)
wait_until 15 at_least $((n + 3)) checks_of web 0 || fail "web is not checked"
[ "$(alerts web)" = 1 ] || fail "web alerted $(alerts web) times, not once"
ok "parent recovered with the child down: the child's DOWN went out then, once"

# The child recovers normally.
echo 200 >"$T/child.status"
EXPECT=1 wait_until 15 is alerts web up || fail "no UP alert for web"

# The parent down, the child down and up again, the parent up: nothing for
# the child.
echo 500 >"$T/parent.status"
EXPECT=2 wait_until 15 is alerts switch down || fail "no second DOWN for switch"
echo 500 >"$T/child.status"
EXPECT=down wait_until 15 is state_of web || fail "web did not go down again"
echo 200 >"$T/child.status"
EXPECT=up wait_until 15 is state_of web || fail "web did not come back"
echo 200 >"$T/parent.status"
EXPECT=2 wait_until 15 is alerts switch up || fail "no second UP for switch"
n=$(checks_of web 1)
wait_until 15 at_least $((n + 3)) checks_of web 1 || fail "web is not checked"
[ "$(alerts web)" = 2 ] || fail "web alerted although it recovered while held: $(cat "$T/hook.jsonl")"
grep -q 'monitor web: hold ended (depends_on switch); state up as before' "$T/agent.log" ||
    fail "the quiet release is not logged"
stop_agent
ok "a child that recovered while its parent was down sends nothing"
