#!/bin/bash
# The admin API under concurrency: PUTs in parallel (new monitors, and
# many to one name), and PUTs interleaved with SIGHUPs.  Every change
# lands whole: the running monitors are exactly those of the files, each
# as its file says, and a restart loads the same set.
. "$abs_top_srcdir/tests/lib.sh"

mkdir "$T/conf.d"
printf 'conc-token\n' >"$T/token"
chmod 600 "$T/token"
AUTH="Authorization: Bearer conc-token"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
include = conf.d
api_token_file = token

[monitor:mainmon]
type = tcp
host = 127.0.0.1
port = 1
interval = 1h
INI
start_agent "$T/agent.ini"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "agent did not start"

# put NAME INTERVAL: PUT a tcp monitor, its status into $T/st.NAME.N
seq_no=0
put() {
	curl -s --max-time 30 -o /dev/null -w '%{http_code}\n' -X PUT -H "$AUTH" \
	    --data-binary "{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":1,\"interval\":\"$2\"}" \
	    "$API/api/monitors/$1"
}
# running: "NAME INTERVAL_MS" of every running monitor, sorted.
running() {
	curl -fsS -H "$AUTH" "$API/api/monitors" |
	    jq -r '.[] | "\(.name) \(.interval_ms)"' | sort
}
# on_disk: the same from the files (the main file's monitor included).
on_disk() {
	{
		echo "mainmon 3600000"
		for f in "$T"/conf.d/*.ini; do
			[ -e "$f" ] || continue
			n=$(basename "$f" .ini)
			s=$(sed -n 's/^interval = \([0-9]*\)s$/\1/p' "$f")
			echo "$n $((s * 1000))"
		done
	} | sort
}

# ---- 24 new monitors, 8 PUTs at a time ----
for i in $(seq 1 24); do
	put "p$i" "${i}s" >"$T/st.p$i" &
	PIDS+=($!)
	if [ $((i % 8)) -eq 0 ]; then wait "${PIDS[@]: -8}"; fi
done
for i in $(seq 1 24); do
	[ "$(cat "$T/st.p$i")" = 201 ] || fail "parallel PUT p$i: $(cat "$T/st.p$i")"
done
[ "$(running | wc -l)" = 25 ] || fail "expected 25 running monitors: $(running)"
[ "$(running)" = "$(on_disk)" ] || fail "running differs from the files: $(diff <(running) <(on_disk))"
ok "24 PUTs, 8 in parallel: all 201, the running set is the files'"

# ---- 8 PUTs in parallel to one name: one wins, whole ----
start=${#PIDS[@]}
for i in $(seq 1 8); do
	put same "$((i + 10))s" >"$T/st.same$i" &
	PIDS+=($!)
done
wait "${PIDS[@]:$start}"
created=0
for i in $(seq 1 8); do
	case $(cat "$T/st.same$i") in
	201) created=$((created + 1)) ;;
	200) ;;
	*) fail "PUT same #$i: $(cat "$T/st.same$i")" ;;
	esac
done
[ "$created" = 1 ] || fail "$created of 8 PUTs to one name said 201 Created"
[ "$(grep -c '^\[' "$T/conf.d/same.ini")" = 1 ] || fail "same.ini: $(cat "$T/conf.d/same.ini")"
[ "$(running)" = "$(on_disk)" ] || fail "after PUTs to one name: $(diff <(running) <(on_disk))"
ok "8 parallel PUTs to one name: one 201, seven 200, the file whole and in force"

# ---- PUTs interleaved with SIGHUPs ----
reloads_before=$(grep -c 'reload applied' "$T/agent.log" || true)
(
	for k in $(seq 1 20); do
		kill -HUP "$AGENT_PID" 2>/dev/null || exit 0
		sleep 0.05
	done
) &
hup_pid=$!
PIDS+=($hup_pid)
for i in $(seq 1 12); do
	put "h$i" "$((i + 30))s" >"$T/st.h$i" &
	PIDS+=($!)
	if [ $((i % 4)) -eq 0 ]; then wait "${PIDS[@]: -4}"; fi
done
wait "$hup_pid"
for i in $(seq 1 12); do
	[ "$(cat "$T/st.h$i")" = 201 ] || fail "PUT h$i during SIGHUPs: $(cat "$T/st.h$i")"
done
# Every SIGHUP is handled (signals may coalesce: at least one more).
more_reloads() { [ "$(grep -c 'reload applied' "$T/agent.log")" -gt "$reloads_before" ]; }
wait_until 20 more_reloads || fail "no reload was applied"
grep -q 'reload rejected' "$T/agent.log" && fail "a reload was rejected"
[ "$(running | wc -l)" = 38 ] || fail "expected 38 monitors: $(running | wc -l)"
[ "$(running)" = "$(on_disk)" ] || fail "after SIGHUPs: $(diff <(running) <(on_disk))"
ls -A "$T/conf.d" | grep -q '^\.' && fail "temporary files left: $(ls -A "$T/conf.d")"
ok "12 PUTs interleaved with 20 SIGHUPs: all land, no reload half-applied"

# ---- and a restart loads the same ----
running >"$T/before.txt"
stop_agent
start_agent "$T/agent.ini"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "agent did not restart"
running >"$T/after.txt"
cmp -s "$T/before.txt" "$T/after.txt" || fail "restart: $(diff "$T/before.txt" "$T/after.txt")"
ok "restart after concurrent changes: the same 38 monitors"
stop_agent
