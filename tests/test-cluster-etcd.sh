#!/bin/bash
# Cluster mode against Debian's real etcd on loopback: three agents share
# 30 monitors, each checked by exactly one of them; a killed agent's
# monitors are taken over, a stopped one's at once; a fourth agent gets
# slots only after join_grace; a duplicate name is refused.
. "$abs_top_srcdir/tests/lib.sh"

start_etcd
EP=$ETCD_PORT

start_httpd target
N=30

# agent_conf NAME [GRACE]: a file for agent NAME with its own database.
agent_conf() {
	{
		printf '[agent]\nlisten = 127.0.0.1:0\ndatabase = %s/%s.db\n' \
		    "$T" "$1"
		printf '[cluster]\netcd = http://127.0.0.1:%s\nname = %s\n' \
		    "$EP" "$1"
		printf 'location = here\ncluster = t\nlease_ttl = 3s\n'
		printf 'join_grace = %s\n' "${2:-4s}"
		for i in $(seq 1 $N); do
			printf '[monitor:m%02d]\ntype = tcp\nhost = 127.0.0.1\n' "$i"
			printf 'port = %s\ninterval = 1s\ntimeout = 1s\n' "$target_PORT"
		done
	} >"$T/$1.ini"
}

# checked NAME FROM TO: the monitors NAME stored a check of in [FROM, TO)
# (unix ms), one per line.
checked() {
	sql "$T/$1.db" "SELECT DISTINCT m.name FROM checks c JOIN monitors m
	    ON m.id = c.monitor_id WHERE c.ts >= $2 AND c.ts < $3 ORDER BY 1"
}
now_ms() { date +%s%3N; }
# owned NAME: how many slots NAME holds, from its API.
owned() { curl -fsS "$(api_of "$1")/api/cluster" | jq -r .owned; }
jq_cluster() { curl -fsS "$(api_of "$1")/api/cluster" | jq -r "$2"; }
members() { curl -fsS "$(api_of "$1")/api/cluster" | jq -r '.members | length'; }
sum_owned() {
	local s=0 a
	for a in "$@"; do s=$((s + $(owned "$a"))); done
	echo "$s"
}

# ---- three agents share the monitors ----
for a in a1 a2 a3; do agent_conf "$a"; done
start_member a1
start_member a2
start_member a3
EXPECT=3
wait_until 20 is members a1 || fail "a1 sees 3 members: $(members a1)"
EXPECT=$N
wait_until 30 is sum_owned a1 a2 a3 ||
    fail "all $N slots held: $(sum_owned a1 a2 a3)"
# Settled once join_grace is over for all and the drains are done.
sleep 6
EXPECT=$N
wait_until 20 is sum_owned a1 a2 a3 || fail "slots held after settling"
for a in a1 a2 a3; do
	o=$(owned "$a")
	[ "$o" -ge 4 ] || fail "$a holds $o of $N slots (rendezvous: about 10)"
done
ok "3 agents hold all $N slots, each a share ($(owned a1)/$(owned a2)/$(owned a3))"

# Prometheus HTTP service discovery: every agent, at its API address.
sd=$(curl -fsS "$(api_of a2)/api/cluster/sd")
for a in a1 a2 a3; do
	addr=$(api_of "$a"); addr=${addr#http://}
	echo "$sd" | jq -e --arg a "$a" --arg t "$addr" \
	    '.[] | select(.labels.agent == $a and .labels.location == "here" and .labels.cluster == "t") | .targets == [$t]' >/dev/null ||
	    fail "/api/cluster/sd lists $a at $addr: $sd"
done
ok "GET /api/cluster/sd lists the three agents"

# Steady state: in a 4 s window every monitor is checked by exactly one
# agent (the stores flush within a second), and etcd is not written at
# all (renewals create no revision; states are written on change only).
rev() { curl -fsS -X POST -d '{"key": "AA=="}' "http://127.0.0.1:$EP/v3/kv/range" | jq -r .header.revision; }
rev0=$(rev)
from=$(now_ms)
sleep 4
to=$(now_ms)
rev1=$(rev)
[ "$rev0" = "$rev1" ] || fail "etcd written while settled: revision $rev0 -> $rev1"
ok "settled: etcd's revision unchanged over 4 s ($rev0) with $N monitors checked every second"
sleep 1.5
for a in a1 a2 a3; do checked "$a" "$from" "$to" >"$T/$a.set"; done
sort "$T/a1.set" "$T/a2.set" "$T/a3.set" >"$T/all.set"
[ "$(sort -u "$T/all.set" | wc -l)" -eq "$N" ] ||
    fail "every monitor checked in the window: $(sort -u "$T/all.set" | wc -l)"
dups=$(uniq -d "$T/all.set" | tr '\n' ' ')
[ -z "$dups" ] || fail "monitors checked by two agents: $dups"
ok "steady state: each of $N monitors checked by exactly one agent"

# SIGKILL a1: its lease expires within 3 s and the others take over.
a1_set=$(cat "$T/a1.set" | tr '\n' ' ')
kill -KILL "${APID[a1]}"
wait "${APID[a1]}" 2>/dev/null || true
EXPECT=$N
wait_until 15 is sum_owned a2 a3 || fail "a2+a3 hold all after a1's death"
from=$(now_ms)
sleep 3
to=$(now_ms)
sleep 1.5
for a in a2 a3; do checked "$a" "$from" "$to" >"$T/$a.set"; done
sort "$T/a2.set" "$T/a3.set" >"$T/all.set"
[ "$(sort -u "$T/all.set" | wc -l)" -eq "$N" ] ||
    fail "after SIGKILL all checked: $(sort -u "$T/all.set" | wc -l)"
[ -z "$(uniq -d "$T/all.set")" ] || fail "double checks after SIGKILL"
ok "SIGKILL: a1's monitors ($a1_set) taken over, none doubled"

# SIGTERM a2: it revokes its lease on the way out; a3 claims at once.
t0=$(now_ms)
kill -TERM "${APID[a2]}"
rc=0
wait "${APID[a2]}" || rc=$?
[ "$rc" -eq 0 ] || fail "a2 exited $rc after SIGTERM"
grep -q "cluster: left" "$T/a2.log" || fail "a2 revoked its lease"
EXPECT=$N
wait_until 5 is owned a3 || fail "a3 holds all after a2 left: $(owned a3)"
ok "SIGTERM: a2 left, a3 holds all $N within $(( $(now_ms) - t0 )) ms"

# A newcomer waits join_grace before it gets slots, then about half.
agent_conf a4 4s
start_member a4
sleep 1
[ "$(owned a4)" -eq 0 ] || fail "a4 holds slots inside join_grace: $(owned a4)"
wait_until 15 at_least 5 owned a4 || fail "a4 got slots after join_grace"
EXPECT=$N
wait_until 10 is sum_owned a3 a4 || fail "a3+a4 hold all"
ok "a newcomer gets slots only after join_grace ($(owned a4) of $N)"

# Same monitors, same fingerprint; an agent given another file is flagged.
EXPECT=0
wait_until 5 is jq_cluster a3 .config_mismatch || fail "a3 and a4 agree"
agent_conf a5 4s
printf '[monitor:extra]\ntype = tcp\nhost = 127.0.0.1\nport = %s\n' \
    "$target_PORT" >>"$T/a5.ini"
start_member a5
EXPECT=1
wait_until 10 is jq_cluster a3 .config_mismatch ||
    fail "a5's other file flagged on a3: $(jq_cluster a3 .config_mismatch)"
EXPECT=false
is jq_cluster a3 '.members[] | select(.name == "a5") | .config_same' ||
    fail "a5 shown with config_same false"
curl -fsS "$(api_of a3)/metrics" | grep -q '^watchpost_cluster_config_mismatch 1$' ||
    fail "the mismatch metric"
kill -TERM "${APID[a5]}"
wait "${APID[a5]}" || fail "a5 exited $?"
EXPECT=0
wait_until 10 is jq_cluster a3 .config_mismatch || fail "a5 gone, no mismatch"
ok "an agent with other monitors is flagged in /api/cluster and /metrics"

# SIGSTOP a3 for over twice the TTL: its lease expires on the server and
# a4 takes every slot; woken, a3 is fenced by its own deadline (it starts
# nothing on the dead lease), learns the lease is gone and joins again.
kill -STOP "${APID[a3]}"
EXPECT=$N
wait_until 15 is owned a4 || fail "a4 holds all while a3 is stopped: $(owned a4)"
sleep 3
kill -CONT "${APID[a3]}"
wait_until 10 grep -q "cluster: lease .* is gone" "$T/a3.log" ||
    fail "a3 saw its lease gone after SIGCONT"
wait_until 15 grep -q "registering again" "$T/a3.log" || fail "a3 re-registers"
EXPECT=$N
wait_until 20 is sum_owned a3 a4 || fail "a3+a4 hold all after SIGCONT"
ok "SIGSTOP past the lease: a4 took over, a3 came back fenced and rejoined"

# A second agent named a3 is refused once a3's lease keeps being renewed.
sed "s#$T/a3.db#$T/dup.db#" "$T/a3.ini" >"$T/dup.ini"
rc=0
timeout 30 "$WATCHPOST" -c "$T/dup.ini" -P "$PLUGINS" >/dev/null \
    2>"$T/dup.log" || rc=$?
[ "$rc" -eq 1 ] || fail "the duplicate a3 exits 1 (got $rc)"
grep -q "another live agent is named a3" "$T/dup.log" ||
    fail "the duplicate name is named: $(tail -3 "$T/dup.log")"
ok "a duplicate agent name is refused"

for a in a3 a4; do
	kill -TERM "${APID[$a]}"
	rc=0
	wait "${APID[$a]}" || rc=$?
	[ "$rc" -eq 0 ] || fail "$a exited $rc"
done
ok "agents stop cleanly"

# Over the whole run, across every agent's database: no monitor was
# checked twice for one grid point (two checks of it by different agents
# less than half its 1 s interval apart), whatever the handovers.
q="ATTACH '$T/a2.db' AS b; ATTACH '$T/a3.db' AS c; ATTACH '$T/a4.db' AS d;
WITH r AS (
 SELECT 'a1' a, m.name n, k.ts ts FROM main.checks k JOIN main.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT 'a2', m.name, k.ts FROM b.checks k JOIN b.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT 'a3', m.name, k.ts FROM c.checks k JOIN c.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT 'a4', m.name, k.ts FROM d.checks k JOIN d.monitors m ON m.id = k.monitor_id),
w AS (SELECT a, n, ts, LAG(a) OVER (PARTITION BY n ORDER BY ts) pa,
 LAG(ts) OVER (PARTITION BY n ORDER BY ts) pts FROM r)
SELECT count(*), (SELECT count(*) FROM r),
 coalesce(group_concat(n || ':' || pa || '/' || a || ':' || (ts - pts), ' '), '')
 FROM w WHERE pa IS NOT NULL AND pa <> a AND ts - pts < 500"
res=$(sql "$T/a1.db" "$q")
IFS='|' read -r doubled total detail <<<"$res"
[ "$total" -gt 500 ] || fail "too few checks stored in all: $total"
[ "$doubled" -eq 0 ] || fail "$doubled double checks across agents: $detail"
ok "no monitor checked twice for one grid point across agents ($total checks)"

# The same from the rows' own words (schema 7): each records its agent,
# location and grid point, and no (monitor, location, grid point) has two
# rows in all the agents' databases.
q="ATTACH '$T/a2.db' AS b; ATTACH '$T/a3.db' AS c; ATTACH '$T/a4.db' AS d;
WITH r AS (
 SELECT m.name n, k.agent a, k.location l, k.grid g FROM main.checks k JOIN main.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT m.name, k.agent, k.location, k.grid FROM b.checks k JOIN b.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT m.name, k.agent, k.location, k.grid FROM c.checks k JOIN c.monitors m ON m.id = k.monitor_id
 UNION ALL SELECT m.name, k.agent, k.location, k.grid FROM d.checks k JOIN d.monitors m ON m.id = k.monitor_id)
SELECT (SELECT count(*) FROM r WHERE a IS NULL OR l IS NOT 'here'),
 (SELECT count(*) FROM r WHERE g IS NOT NULL),
 (SELECT coalesce(group_concat(n || '@' || l || '#' || g || ' x' || c, ' '), '')
  FROM (SELECT n, l, g, count(*) c FROM r WHERE g IS NOT NULL
   GROUP BY n, l, g HAVING count(*) > 1))"
res=$(sql "$T/a1.db" "$q")
IFS='|' read -r unnamed gridded dups <<<"$res"
[ "$unnamed" -eq 0 ] || fail "$unnamed rows without their agent and location"
[ "$gridded" -gt 500 ] || fail "too few rows with a grid point: $gridded"
[ -z "$dups" ] || fail "grid points checked twice: $dups"
ok "no (monitor, location, grid point) twice in the agents' rows ($gridded rows)"
