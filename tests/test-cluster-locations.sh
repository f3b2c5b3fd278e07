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

# /metrics in cluster mode, on every agent: valid exposition (promlint,
# promtool), the engine's families, one member per location, the
# per-monitor series labelled with location and agent (from the agent
# holding that location's slot only), and the @global decision from
# exactly one agent, the one that makes it.
LINT="$abs_top_srcdir/tests/promlint.awk"
metrics_of() { curl -fsS "$(api_of "$1")/metrics"; }
# mval LOCATION SERIES: the value of SERIES (regex-quoted) on that agent.
mval() { metrics_of "$1" | awk -v s="$2" 'index($0, s " ") == 1 { print $NF }'; }
mon_up() { mval "$1" "watchpost_monitor_up{monitor=\"svc\",type=\"http\",location=\"$1\",agent=\"agent-$1\"}"; }
deciders() {
	local l n=0
	for l in $LOCS; do
		alive "$l" || continue
		metrics_of "$l" | grep -q '^watchpost_cluster_decision{monitor="svc"} ' &&
		    n=$((n + 1))
	done
	echo "$n"
}
for l in $LOCS; do
	EXPECT=1
	wait_until 10 is mon_up "$l" || fail "$l: watchpost_monitor_up with location and agent: $(metrics_of "$l" | grep '^watchpost_monitor_up')"
	metrics_of "$l" >"$T/$l.prom"
	awk -f "$LINT" "$T/$l.prom" || fail "$l: /metrics is not valid exposition"
	if command -v promtool >/dev/null 2>&1; then
		promtool check metrics <"$T/$l.prom" >"$T/promtool.txt" 2>&1 ||
		    fail "$l: promtool check metrics: $(cat "$T/promtool.txt")"
		[ -s "$T/promtool.txt" ] && fail "$l: promtool: $(cat "$T/promtool.txt")"
	fi
	for f in 'watchpost_cluster_engine_up 1' 'watchpost_cluster_fenced 0' \
	    'watchpost_cluster_members{location="fra"} 1' \
	    'watchpost_cluster_members{location="nyc"} 1' \
	    'watchpost_cluster_members{location="sgp"} 1'; do
		grep -qxF "$f" "$T/$l.prom" || fail "$l: no '$f' on /metrics: $(grep '^watchpost_cluster' "$T/$l.prom")"
	done
	for f in takeovers claim_conflicts; do
		grep -Eq "^watchpost_cluster_${f}_total [0-9]+$" "$T/$l.prom" ||
		    fail "$l: no watchpost_cluster_${f}_total"
	done
	left=$(sed -n 's/^watchpost_cluster_lease_remaining_seconds //p' "$T/$l.prom")
	awk -v v="$left" 'BEGIN { exit !(v > 0 && v <= 3) }' ||
	    fail "$l: lease remaining $left s (lease_ttl 3s)"
	# Only this location's series of svc: the others' are not ours.
	n=$(grep -c '^watchpost_monitor_up{' "$T/$l.prom")
	[ "$n" = 1 ] || fail "$l: $n watchpost_monitor_up series: $(grep '^watchpost_monitor_up' "$T/$l.prom")"
done
EXPECT=1
wait_until 5 is deciders || fail "the decision is on $(deciders) agents' /metrics"
for l in $LOCS; do
	d=$(mval "$l" 'watchpost_cluster_decision{monitor="svc"}')
	[ -z "$d" ] || [ "$d" = 1 ] || fail "$l: decision metric $d while up"
done
ok "/metrics: cluster families valid; svc by location and agent; one decision"

echo 500 >"$T/fra.status"
EXPECT=down
wait_until 10 is verdict_of fra || fail "fra's verdict down"
sleep 2
[ "$(alerts down)" = 0 ] || fail "one location down raised an alert: $(cat "$T/accepted.jsonl")"
EXPECT=up
is decision || fail "one location down changed the decision: $(decision)"
EXPECT=0
is mon_up fra || fail "fra's own metric: $(mon_up fra)"
EXPECT=1
is mon_up nyc || fail "nyc's own metric: $(mon_up nyc)"
for l in $LOCS; do
	d=$(mval "$l" 'watchpost_cluster_decision{monitor="svc"}')
	[ -z "$d" ] || [ "$d" = 1 ] || fail "$l: decision metric $d with fra alone down"
done
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
dm=$(for l in $LOCS; do mval "$l" 'watchpost_cluster_decision{monitor="svc"}'; done | tr -d '\n')
[ "$dm" = 0 ] || fail "the decision metric while DOWN, over the agents: '$dm'"
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
