#!/bin/bash
# Cluster mode on a three-member etcd: SIGKILL etcd's leader and bring it
# back after 10 s.  The agents rotate to the other endpoints; no claim
# changes hands (no takeover), no agent is fenced, nothing alerts, and
# every monitor goes on being checked by exactly one agent.
. "$abs_top_srcdir/tests/lib.sh"

command -v etcd >/dev/null || { echo "SKIP: no etcd (etcd-server)"; exit 77; }

# Three members on loopback: client port P, peer port P+1 each.
declare -A EP EPID
for try in 1 2 3 4 5; do
	base=$(free_port_try "$try")
	EP[e1]=$base; EP[e2]=$((base + 2)); EP[e3]=$((base + 4))
	cluster="e1=http://127.0.0.1:$((base + 1)),e2=http://127.0.0.1:$((base + 3)),e3=http://127.0.0.1:$((base + 5))"
	member() { # member NAME: start it (again) on its ports and data
		etcd --name "$1" --data-dir "$T/$1" \
		    --listen-client-urls "http://127.0.0.1:${EP[$1]}" \
		    --advertise-client-urls "http://127.0.0.1:${EP[$1]}" \
		    --listen-peer-urls "http://127.0.0.1:$((EP[$1] + 1))" \
		    --initial-advertise-peer-urls "http://127.0.0.1:$((EP[$1] + 1))" \
		    --initial-cluster "$cluster" \
		    --initial-cluster-token wp-test \
		    >>"$T/$1.etcd.log" 2>&1 &
		EPID[$1]=$!
		PIDS+=(${EPID[$1]})
	}
	for e in e1 e2 e3; do member "$e"; done
	healthy() {
		local e
		for e in e1 e2 e3; do
			curl -fsS "http://127.0.0.1:${EP[$e]}/health" | grep -q '"true"' ||
			    return 1
		done
	}
	wait_until 30 healthy && break
	for e in e1 e2 e3; do kill "${EPID[$e]}" 2>/dev/null || true; done
	for e in e1 e2 e3; do wait "${EPID[$e]}" 2>/dev/null || true; rm -rf "${T:?}/$e"; done
	[ "$try" -lt 5 ] || fail "a three-member etcd did not start"
done
ok "etcd: three members"

# leader: the member etcd says leads.
leader() {
	local e st
	for e in e1 e2 e3; do
		st=$(curl -fsS -m 2 -X POST -d '{}' \
		    "http://127.0.0.1:${EP[$e]}/v3/maintenance/status") || continue
		[ "$(echo "$st" | jq -r .leader)" = "$(echo "$st" | jq -r .header.member_id)" ] &&
		    { echo "$e"; return 0; }
	done
	return 1
}

start_httpd target
start_httpd hook --record "$T/hook.jsonl" --accepted "$T/accepted.jsonl"
N=20
endpoints="http://127.0.0.1:${EP[e1]}, http://127.0.0.1:${EP[e2]}, http://127.0.0.1:${EP[e3]}"
for a in a1 a2 a3; do
	{
		printf '[agent]\nlisten = 127.0.0.1:0\ndatabase = %s/%s.db\n' "$T" "$a"
		printf '[cluster]\netcd = %s\nname = %s\nlocation = here\n' "$endpoints" "$a"
		printf 'cluster = t\nlease_ttl = 6s\njoin_grace = 2s\n'
		for i in $(seq 1 $N); do
			printf '[monitor:m%02d]\ntype = tcp\nhost = 127.0.0.1\n' "$i"
			printf 'port = %s\ninterval = 1s\ntimeout = 1s\nalerts = hook\n' "$target_PORT"
		done
		printf '[alert:hook]\ntype = webhook\nurl = http://127.0.0.1:%s/hook\n' "$hook_PORT"
	} >"$T/$a.ini"
	"$WATCHPOST" -c "$T/$a.ini" -P "$PLUGINS" >"$T/$a.out" 2>"$T/$a.log" &
	APID[$a]=$!
	PIDS+=(${APID[$a]})
done
for a in a1 a2 a3; do
	wait_until 15 grep -q "cluster: joined" "$T/$a.log" || fail "$a did not join"
done
# claims: every slot with its holder and token, as a1 sees them.
claims() {
	curl -fsS "$(api_of a1)/api/cluster" |
	    jq -r '.slots[] | select(.holder != null) | "\(.slot) \(.holder) \(.token)"' | sort
}
held() { claims | wc -l; }
EXPECT=$N
wait_until 30 is held || fail "all slots held: $(held)"
sleep 4 # join_grace over, drains done
EXPECT=$N
wait_until 10 is held || fail "all slots held after settling"
claims >"$T/before"
ok "three agents hold all $N slots"

L=$(leader) || fail "no etcd leader"
t0=$(date +%s%3N)
kill -KILL "${EPID[$L]}"
wait "${EPID[$L]}" 2>/dev/null || true
sleep 10
member "$L"
wait_until 30 healthy || fail "etcd healthy again after $L came back"
sleep 3
t1=$(date +%s%3N)
claims >"$T/after"
diff "$T/before" "$T/after" >"$T/claims.diff" ||
    fail "claims changed hands while the leader was down: $(cat "$T/claims.diff")"
for a in a1 a2 a3; do
	! grep -q "cluster-lost" "$T/$a.log" || fail "$a was fenced"
	! grep -q "registering again" "$T/$a.log" || fail "$a lost its lease"
done
[ ! -s "$T/accepted.jsonl" ] || fail "alerts were sent: $(cat "$T/accepted.jsonl")"
ok "etcd leader $L SIGKILLed for 10 s: no takeover, no fencing, no alert"

# Every monitor was checked, each by one agent, all along.
q="ATTACH '$T/a2.db' AS b; ATTACH '$T/a3.db' AS c;
WITH r AS (
 SELECT 'a1' a, m.name n, k.ts ts FROM main.checks k JOIN main.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT 'a2', m.name, k.ts FROM b.checks k JOIN b.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT 'a3', m.name, k.ts FROM c.checks k JOIN c.monitors m ON m.id = k.monitor_id),
w AS (SELECT n, ts, LAG(ts) OVER (PARTITION BY n ORDER BY ts) pts FROM r
 WHERE ts >= $t0 AND ts < $t1)
SELECT count(DISTINCT n), coalesce(max(ts - pts), 0),
 (SELECT count(*) FROM w WHERE pts IS NOT NULL AND ts - pts < 500) FROM w"
for a in a1 a2 a3; do kill -TERM "${APID[$a]}"; done
for a in a1 a2 a3; do
	rc=0
	wait "${APID[$a]}" || rc=$?
	[ "$rc" -eq 0 ] || fail "$a exited $rc"
done
IFS='|' read -r monitors gap doubled <<<"$(sql "$T/a1.db" "$q")"
[ "$monitors" -eq "$N" ] || fail "$monitors of $N monitors checked during the outage"
[ "$doubled" -eq 0 ] || fail "$doubled double checks during the outage"
[ "$gap" -lt 2500 ] || fail "a monitor went $gap ms without a check"
ok "during the outage all $N monitors were checked, none twice, longest gap $gap ms"
