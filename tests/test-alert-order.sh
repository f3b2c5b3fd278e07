#!/bin/bash
# Alerts of one monitor reach the receiver in the order they were raised.
# With the receiver refusing (500), a monitor flaps DOWN, UP, DOWN, UP; when
# the receiver accepts again it must get exactly those four, in that order,
# each once.  Then the same with the agent restarted while the four wait in
# the outbox.  Alerts retried on their own (1 s apart) would come back
# rotated: the receiver returns just after the oldest one's retry.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd flap --hook-status-file "$T/flap.status"
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/accepted.jsonl" \
    --hook-status-file "$T/hook.status"
echo 200 >"$T/flap.status"
echo 500 >"$T/hook.status"
DB="$T/agent.db"
export WATCHPOST_ALERT_BACKOFF_MAX_MS=1000

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

; UP while the flap server answers 200, DOWN while it answers 500.
[monitor:c]
type = http
url = http://127.0.0.1:$flap_PORT/hook
interval = 200ms
timeout = 2s
retries = 0
alerts = hook

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI

transitions() { cat "$T/agent-previous.txt" "$T/agent.log" 2>/dev/null | grep -c "monitor c: .* -> [A-Z]" || true; }
accepted() { cat "$T/accepted.jsonl" 2>/dev/null | grep -c '"monitor": *"c"' || true; }
pending() { sql "$DB" "SELECT count(*) FROM outbox" 2>/dev/null; }
failures() { grep -c 'delivery for monitor c failed' "$T/agent.log" || true; }

# flap CODE: make the target answer CODE and wait for the transition.
flap() {
	local n
	n=$(( $(transitions) + 1 ))
	echo "$1" >"$T/flap.status"
	EXPECT=$n wait_until 15 is transitions || fail "no transition to $1"
}

# check_order FROM: accepted lines FROM.. are DOWN, UP, DOWN, UP for c, with
# rising ids, and there are exactly four of them.
check_order() {
	local lines states ids sorted
	lines=$(grep '"monitor": *"c"' "$T/accepted.jsonl" | tail -n "+$1")
	[ "$(echo "$lines" | wc -l)" = 4 ] ||
	    fail "the receiver accepted $(echo "$lines" | wc -l) alerts, not 4"
	states=$(echo "$lines" | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' | tr '\n' ' ')
	ids=$(echo "$lines" | grep -o '"id": *[0-9]*' | grep -o '[0-9]*$' | tr '\n' ' ')
	sorted=$(echo "$ids" | tr ' ' '\n' | grep . | sort -n -u | tr '\n' ' ')
	[ "$states" = "down up down up " ] ||
	    fail "alerts arrived as: $states(ids $ids)"
	[ "$ids" = "$sorted" ] || fail "alert ids out of order or repeated: $ids"
	ok "$2: the receiver got down up down up, ids $ids"
}

start_agent "$T/agent.ini"
EXPECT=1 wait_until 15 is transitions || fail "c did not come up"

# 1. A receiver outage during the flaps.
flap 500; flap 200; flap 500; flap 200
# Five refusals: alerts retried on their own would have the oldest
# retried just now, behind the other three.
wait_until 15 at_least 5 failures || fail "the receiver did not refuse"
echo 200 >"$T/hook.status"
EXPECT=4 wait_until 30 is accepted || fail "not all four alerts arrived"
EXPECT=0 wait_until 15 is pending || fail "the outbox did not empty"
check_order 1 "receiver outage"

# 2. The same, with a restart while all four wait in the outbox.
echo 500 >"$T/hook.status"
flap 500; flap 200; flap 500; flap 200
EXPECT=4 wait_until 15 is pending || fail "the four alerts are not in the outbox"
stop_agent
echo 200 >"$T/hook.status"
start_agent "$T/agent.ini"
EXPECT=8 wait_until 30 is accepted || fail "not all four alerts arrived after the restart"
EXPECT=0 wait_until 15 is pending || fail "the outbox did not empty after the restart"
check_order 5 "restart with four pending"
# No alert beyond those eight: c stayed UP across the restart.
sleep 1
stop_agent
[ "$(accepted)" = 8 ] || fail "$(accepted) alerts accepted, not 8"
ok "eight alerts, each once"
