#!/bin/bash
# A monitor naming 20 alert sections: each state change reaches all 20, each
# section gets its monitor's alerts in the order raised (DOWN, then UP), and
# one change's alerts carry rising ids in the order the sections are named.
# (The manager once filled a fixed array of 16 and dropped the rest.)
. "$abs_top_srcdir/tests/lib.sh"

N=20
start_httpd flap --hook-status-file "$T/flap.status"
start_httpd hook --accepted "$T/accepted.jsonl"
echo 200 >"$T/flap.status"

names=
sections=
for i in $(seq -w 1 $N); do
	names="$names${names:+, }s$i"
	sections="$sections
[alert:s$i]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook?tag=s$i
timeout = 2s
"
done

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
alerts = $names
$sections
INI

transitions() { grep -c "monitor c: .* -> [A-Z]" "$T/agent.log" || true; }
accepted() { grep -c '"monitor": *"c"' "$T/accepted.jsonl" 2>/dev/null || true; }

start_agent "$T/agent.ini"
EXPECT=1 wait_until 15 is transitions || fail "c did not come up"
echo 500 >"$T/flap.status"
EXPECT=2 wait_until 15 is transitions || fail "c did not go down"
EXPECT=$N wait_until 30 is accepted || fail "$(accepted) of $N DOWN alerts arrived"
echo 200 >"$T/flap.status"
EXPECT=3 wait_until 15 is transitions || fail "c did not come back up"
EXPECT=$((2 * N)) wait_until 30 is accepted ||
    fail "$(accepted) of $((2 * N)) alerts arrived"
stop_agent

for i in $(seq -w 1 $N); do
	states=$(grep "^s$i " "$T/accepted.jsonl" |
	    sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' | tr '\n' ' ')
	[ "$states" = "down up " ] || fail "section s$i got: $states"
done
ok "each of the $N sections got DOWN, then UP"

# The DOWN alerts' ids, in section order, rise.
ids=$(for i in $(seq -w 1 $N); do
	grep "^s$i " "$T/accepted.jsonl" | grep '"state": *"down"' |
	    grep -o '"id": *[0-9]*' | grep -o '[0-9]*$'
done | tr '\n' ' ')
sorted=$(echo "$ids" | tr ' ' '\n' | grep . | sort -n -u | tr '\n' ' ')
[ "$ids" = "$sorted" ] || fail "DOWN alert ids not in section order: $ids"
[ "$(echo "$ids" | wc -w)" = $N ] || fail "DOWN alert ids repeated: $ids"
ok "one change raised $N alerts, ids in section order: $ids"
