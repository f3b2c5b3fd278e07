#!/bin/bash
# Multi-location verdicts: three agents in three locations check one
# monitor (locations = fra, nyc, sgp; confirm = 2), each against its own
# server, so that a "regional outage" is one server answering 500.  One
# location down alone alerts nothing; two give exactly one DOWN alert that
# names both; killing one of them while DOWN keeps it DOWN (a lost vantage
# point never fakes a recovery); healing gives exactly one UP.
. "$abs_top_srcdir/tests/lib.sh"

start_etcd
LOCS="fra nyc sgp"
for l in $LOCS; do
	echo 200 >"$T/$l.status"
	start_httpd "srv_$l" --hook-status-file "$T/$l.status"
done
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/accepted.jsonl"

for l in $LOCS; do
	port_var="srv_${l}_PORT"
	cat >"$T/$l.ini" <<INI
[agent]
database = $T/$l.db
listen = 127.0.0.1:0

[cluster]
etcd = http://127.0.0.1:$ETCD_PORT
name = agent-$l
location = $l
cluster = t
lease_ttl = 3s

[monitor:svc]
type = http
url = http://127.0.0.1:${!port_var}/hook
interval = 500ms
timeout = 400ms
retries = 0
locations = fra, nyc, sgp
confirm = 2
alerts = hook

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI
	"$WATCHPOST" -c "$T/$l.ini" -P "$PLUGINS" >"$T/$l.out" 2>"$T/$l.log" &
	APID[$l]=$!
	PIDS+=(${APID[$l]})
done
for l in $LOCS; do
	wait_until 15 grep -q "cluster: joined" "$T/$l.log" || fail "$l did not join"
done
alive() { kill -0 "${APID[$1]}" 2>/dev/null; }
# decision: the @global owner's decision for svc ("" while none).
decision() {
	local l d
	for l in $LOCS; do
		alive "$l" || continue
		d=$(curl -fsS "$(api_of "$l")/api/cluster" |
		    jq -r '.slots[] | select(.slot == "svc@global" and .decision != null) | .decision')
		[ -n "$d" ] && { echo "$d"; return 0; }
	done
	return 1
}
verdict_of() { # verdict_of LOCATION: as an alive agent sees it
	local l
	for l in $LOCS; do
		alive "$l" || continue
		curl -fsS "$(api_of "$l")/api/cluster" |
		    jq -r ".verdicts[] | select(.location == \"$1\") | .state"
		return 0
	done
}
alerts() { cat "$T/accepted.jsonl" 2>/dev/null | grep -c "\"state\": *\"$1\"" || true; }

EXPECT=up
wait_until 20 is decision || fail "svc decided up: $(decision)"
ok "three locations agree: svc up"

echo 500 >"$T/fra.status"
EXPECT=down
wait_until 10 is verdict_of fra || fail "fra's verdict down"
sleep 2
[ "$(alerts down)" = 0 ] || fail "one location down raised an alert: $(cat "$T/accepted.jsonl")"
EXPECT=up
is decision || fail "one location down changed the decision: $(decision)"
ok "fra alone down: no alert, svc stays up"

echo 500 >"$T/nyc.status"
wait_until 10 at_least 1 alerts down || fail "fra and nyc down: the DOWN alert"
sleep 1.5
[ "$(alerts down)" = 1 ] || fail "DOWN alerted $(alerts down) times"
line=$(grep '"state": *"down"' "$T/accepted.jsonl")
echo "$line" | jq -e '.confirmed_by == "fra,nyc" and (.location | length) > 0 and (.agent | startswith("agent-"))' >/dev/null ||
    fail "the DOWN alert names both locations, its agent and location: $line"
EXPECT=down
is decision || fail "decision after two down: $(decision)"
ok "fra and nyc down: exactly one DOWN alert, confirmed_by fra,nyc"

# A lost vantage point: fra's agent dies, its verdict goes with its
# lease.  Down 1 (nyc), up 1 (sgp), unknown 1: neither rule holds, so
# svc stays DOWN.
kill -KILL "${APID[fra]}"
wait "${APID[fra]}" 2>/dev/null || true
EXPECT=""
wait_until 15 is verdict_of fra || fail "fra's verdict gone with its lease"
sleep 2
EXPECT=down
wait_until 10 is decision || fail "svc stays down after losing fra: $(decision)"
[ "$(alerts up)" = 0 ] || fail "losing a vantage point faked a recovery"
[ "$(alerts down)" = 1 ] || fail "DOWN alerted again: $(alerts down)"
ok "fra's agent killed while DOWN: still DOWN, no new alert"

echo 200 >"$T/nyc.status"
wait_until 10 at_least 1 alerts up || fail "nyc and sgp up: the UP alert"
sleep 1.5
[ "$(alerts up)" = 1 ] && [ "$(alerts down)" = 1 ] ||
    fail "alerts: $(alerts up) up, $(alerts down) down"
ok "nyc heals: exactly one UP alert"

for l in nyc sgp; do
	kill -TERM "${APID[$l]}"
	rc=0
	wait "${APID[$l]}" || rc=$?
	[ "$rc" -eq 0 ] || fail "$l exited $rc"
done
