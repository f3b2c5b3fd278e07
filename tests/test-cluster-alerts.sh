#!/bin/bash
# Cluster mode hands a monitor's state to the next owner through etcd: a
# monitor that went DOWN on one agent stays DOWN when another takes it
# over after a SIGKILL -- no second DOWN alert --, and its recovery is
# alerted once, by the new owner.
. "$abs_top_srcdir/tests/lib.sh"

start_etcd
start_httpd flap --hook-status-file "$T/flap.status"
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/accepted.jsonl"
echo 200 >"$T/flap.status"

agent_conf() {
	cat >"$T/$1.ini" <<INI
[agent]
database = $T/$1.db
listen = 127.0.0.1:0

[cluster]
etcd = http://127.0.0.1:$ETCD_PORT
name = $1
location = here
cluster = t
lease_ttl = 3s

; UP while the flap server answers 200, DOWN while it answers 500.
[monitor:svc]
type = http
url = http://127.0.0.1:$flap_PORT/hook
interval = 500ms
timeout = 2s
retries = 0
alerts = hook

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
timeout = 2s
INI
}
owned() { curl -fsS "$(api_of "$1")/api/cluster" | jq -r .owned; }
alerts() { cat "$T/accepted.jsonl" 2>/dev/null | grep -c "\"state\": *\"$1\"" || true; }
# owner: the agent holding svc (b1 or b2), once exactly one does.
owner() {
	local a o=
	for a in b1 b2; do
		[ -n "${APID[$a]:-}" ] && kill -0 "${APID[$a]}" 2>/dev/null ||
		    continue
		[ "$(owned "$a")" = 1 ] && o="$o$a"
	done
	[ "$o" = b1 ] || [ "$o" = b2 ] || return 1
	echo "$o"
}

agent_conf b1
agent_conf b2
start_member b1
start_member b2
wait_until 20 owner || fail "one agent holds svc"
wait_until 15 grep -q "monitor svc: pending -> UP" "$T/b1.log" "$T/b2.log" ||
    fail "svc came up"
first=$(owner)
ok "svc held by $first"

echo 500 >"$T/flap.status"
wait_until 15 at_least 1 alerts down || fail "the DOWN alert"
grep -q "cluster: .*state of svc" "$T/$first.log" &&
    fail "the state commit failed: $(grep 'state of svc' "$T/$first.log")"
sleep 1
state=$(curl -fsS "http://127.0.0.1:$ETCD_PORT/v3/kv/range" \
    -d "{\"key\": \"$(printf t/state/svc | base64)\"}" |
    jq -r '.kvs[0].value' | base64 -d | jq -r .state)
[ "$state" = down ] || fail "etcd's t/state/svc says $state"
ok "the DOWN transition is in etcd (t/state/svc) and alerted once"

kill -KILL "${APID[$first]}"
wait "${APID[$first]}" 2>/dev/null || true
unset "APID[$first]"
wait_until 20 owner || fail "the other agent takes svc over"
second=$(owner)
[ "$second" != "$first" ] || fail "the owner did not change"
grep -q "cluster: svc continues down" "$T/$second.log" ||
    fail "$second continues from the stored state: $(grep cluster "$T/$second.log" | tail -5)"
# Several checks on the new owner, all DOWN: no new alert.
sleep 3
[ "$(alerts down)" = 1 ] || fail "DOWN alerted $(alerts down) times after the takeover"
ok "after SIGKILL, $second continues svc as DOWN without a second alert"

echo 200 >"$T/flap.status"
wait_until 15 at_least 1 alerts up || fail "the recovery alert"
sleep 1.5
[ "$(alerts up)" = 1 ] && [ "$(alerts down)" = 1 ] ||
    fail "alerts: $(alerts up) up, $(alerts down) down"
ok "the recovery is alerted once, by $second"

# etcd out of reach for 5 s (longer than the lease): the owner is fenced
# (cluster-lost), keeps checking (on_engine_loss = observe) but alerts
# nothing; the target goes DOWN meanwhile.  When etcd is back the owner
# resumes on the same lease and that DOWN is alerted exactly once.
kill -TERM "$ETCD_PID"
wait "$ETCD_PID" 2>/dev/null || true
echo 500 >"$T/flap.status"
wait_until 10 grep -q "cluster-lost" "$T/$second.log" ||
    fail "$second raised cluster-lost"
wait_until 10 grep -q "monitor svc: up -> DOWN" "$T/$second.log" ||
    fail "$second goes on checking (observe) and sees svc DOWN"
sleep 2
[ "$(alerts down)" = 1 ] || fail "an alert went out while fenced"
etcd_run || fail "etcd did not come back"
wait_until 15 at_least 2 alerts down || fail "the DOWN alert after etcd's return"
sleep 1.5
[ "$(alerts down)" = 2 ] || fail "DOWN alerted $(alerts down) times in all"
grep -q "registering again" "$T/$second.log" &&
    fail "$second re-registered instead of resuming its lease"
grep -q "no longer fenced" "$T/$second.log" || fail "$second unfenced"
ok "etcd down 5 s: fenced, no alert meanwhile; one DOWN alert on its return, same lease"

kill -TERM "${APID[$second]}"
rc=0
wait "${APID[$second]}" || rc=$?
[ "$rc" -eq 0 ] || fail "$second exited $rc"
