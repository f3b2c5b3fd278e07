#!/bin/bash
# Fault injection, the database: while the running agent's database cannot
# be written -- first as a read-only file system would refuse it (EROFS,
# through the faultfs.so shim: the tests run as root, whom chmod does not
# stop), then as a full disk would (a file-size limit, RLIMIT_FSIZE, put
# on the running process with prlimit) -- checks keep running, results
# wait in the bounded queue (what does not fit is dropped and counted),
# /api/monitor and /metrics show the fault, and writes resume once it
# heals.  The agent then stops with an intact database, and exits 1 for
# the results it dropped.
. "$abs_top_srcdir/tests/lib.sh"

FAULTFS="$abs_top_builddir/tests/.libs/faultfs.so"
[ -f "$FAULTFS" ] || fail "faultfs.so not built"
command -v prlimit >/dev/null || fail "prlimit (util-linux) is required"

start_httpd web
mkdir "$T/db"
DB="$T/db/agent.db"
CTL="$T/fault"
QMAX=40

{
	printf '[agent]\ndatabase = %s\nlisten = 127.0.0.1:0\nlog_level = info\n' "$DB"
	for i in 1 2 3 4 5; do
		printf '\n[monitor:m%d]\ntype = http\nurl = http://127.0.0.1:%s/status/200\n' "$i" "$web_PORT"
		printf 'interval = 100ms\ntimeout = 2s\nalerts = none\n'
	done
} >"$T/agent.ini"

# A value from a JSON file, through SQLite's JSON functions (no jq, no
# python on a fresh machine).
jget() { sql ":memory:" "SELECT json_extract(readfile('$1'), '$2')"; }
opmon() { curl -fsS "$API/api/monitor" >"$T/opmon.json" && jget "$T/opmon.json" "$1"; }
rows() { sql "$DB" "SELECT count(*) FROM checks"; }
checks_done() { # finished checks of m1, as the agent counts them
	curl -fsS "$API/metrics" |
	    sed -n 's/^watchpost_monitor_checks_total{monitor="m1"[^}]*} //p' |
	    awk '{s += $1} END {print s + 0}'
}

# The log goes through a pipe: a file-size limit must not hit it.
WP_FAULT_DIR="$T/db" WP_FAULT_CTL="$CTL" LD_PRELOAD="$FAULTFS" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    WATCHPOST_STORE_QUEUE_MAX=$QMAX \
    "$WATCHPOST" -c "$T/agent.ini" -P "$PLUGINS" >"$T/agent.out" \
    2> >(exec cat >>"$T/agent.log") &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
wait_until 10 grep -q 'listening on' "$T/agent.log" || fail "agent API did not come up"
API="http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$T/agent.log" | tail -1)"
wait_until 15 at_least 20 rows || fail "no rows stored before the fault"
ok "agent runs with the fault shim loaded"

# fault_cycle NAME INJECT HEAL EXPECT: one fault, from healthy to healthy.
fault_cycle() {
	local name=$1 inject=$2 heal=$3 expect=$4 errs0 drop0 c0 r0 t0 t1
	errs0=$(metric watchpost_store_write_errors_total)
	drop0=$(metric watchpost_store_dropped_total)
	t0=$(date +%s%3N)
	eval "$inject"
	wait_until 15 at_least 1 metric watchpost_store_failing ||
	    fail "$name: /metrics never showed watchpost_store_failing 1"
	r0=$(rows)
	c0=$(checks_done)
	# Checks go on; their results wait in the queue until it is full,
	# then are dropped and counted.
	wait_until 20 at_least $((c0 + 15)) checks_done ||
	    fail "$name: checks stopped while the database failed"
	wait_until 20 at_least $QMAX metric watchpost_store_queue_depth ||
	    fail "$name: the queue did not fill"
	wait_until 20 at_least $((drop0 + 1)) metric watchpost_store_dropped_total ||
	    fail "$name: a full queue dropped nothing"
	[ "$(metric watchpost_store_queue_depth)" -le $QMAX ] ||
	    fail "$name: queue grew past its bound"
	at_least $((errs0 + 1)) metric watchpost_store_write_errors_total ||
	    fail "$name: write errors not counted"
	curl -fsS "$API/metrics" >"$T/metrics.txt" || fail "$name: /metrics"
	grep -Eq '^watchpost_operations_total\{category="store",outcome="failed"\} [1-9]' \
	    "$T/metrics.txt" ||
	    fail "$name: /metrics has no failed store operation"
	[ "$(rows)" -eq "$r0" ] || fail "$name: rows appeared during the fault"
	at_least 1 opmon '$.by_category.store.failed' ||
	    fail "$name: /api/monitor counts no failed store operation"
	grep -q "$expect" "$T/opmon.json" ||
	    fail "$name: /api/monitor does not say \"$expect\": $(cat "$T/opmon.json")"
	grep -q "store: write failed, retrying: .*$expect" "$T/agent.log" ||
	    fail "$name: the failure is not logged"
	ok "$name: checks go on, queue bounded at $QMAX ($(metric watchpost_store_dropped_total) dropped), fault in /metrics, /api/monitor, log"

	t1=$(date +%s%3N)
	eval "$heal"
	wait_until 20 at_least $((r0 + QMAX)) rows ||
	    fail "$name: writes did not resume"
	wait_until 20 sh -c "[ \"\$(curl -fsS '$API/metrics' | sed -n 's/^watchpost_store_failing //p')\" = 0 ]" ||
	    fail "$name: still failing after the fault healed"
	grep -q "store: writes recovered" "$T/agent.log" || fail "$name: recovery not logged"
	# What waited in the queue was written: results of checks that ran
	# during the fault.
	[ "$(sql "$DB" "SELECT count(*) FROM checks WHERE ts > $t0 AND ts < $t1")" -ge $((QMAX / 2)) ] ||
	    fail "$name: queued results were not written"
	ok "$name: writes resume, queued results written"
}

# 1. Read-only: every write, sync and truncate of the database files
#    fails with EROFS.
fault_cycle "read-only database" "echo EROFS >'$CTL'" "rm -f '$CTL'" \
    "disk I/O error"

# 2. Disk full: the process may not grow any file past 1 KiB.  SIGXFSZ is
#    ignored by the agent, so the write fails instead of killing it.
fault_cycle "file size limit (disk full)" \
    "prlimit --pid $AGENT_PID --fsize=1024:unlimited" \
    "prlimit --pid $AGENT_PID --fsize=unlimited:unlimited" \
    "disk I/O error"

# 3. A slow database: another process holds the write lock for 300 ms.
#    The batch that waits for it is logged with where its time went.  Such
#    lines come at most once per 10 s, so the lock is taken again until
#    one appears (a batch slowed by the faults above may have used it).
lock_wait() { # the lock wait of the last slow-write line, in whole ms
	sed -n 's/.*store: slow write: .*(lock \([0-9]*\)\.[0-9], rows.*/\1/p' \
	    "$T/agent.log" | tail -1
}
for i in 1 2 3 4 5 6 7 8; do
	sqlite3 "$DB" "BEGIN IMMEDIATE;" ".shell sleep 0.3" "COMMIT;" ||
	    fail "could not hold the write lock"
	wait_until 2 grep -q 'store: slow write:' "$T/agent.log" &&
	    [ "$(lock_wait)" -ge 200 ] && break
done
lock=$(lock_wait)
[ "${lock:-0}" -ge 200 ] || fail "slow batch: lock wait ${lock:-?} ms, not >= 200"
ok "a batch held up by another writer is logged with its lock wait ($lock ms)"

# SIGTERM: the database is intact and holds everything queued, but the
# results dropped while the queue was full were lost: the agent says how
# many and exits 1.
dropped=$(metric watchpost_store_dropped_total)
[ "$dropped" -gt 0 ] || fail "nothing was dropped"
rc=0
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc after losing results, not 1"
[ "$(sql "$DB" "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
wait_until 5 grep -q "stopped" "$T/agent.log" || fail "stop not logged"
grep -q "error store: $DB: $dropped result(s) never reached the database: $dropped dropped because the queue was full, 0 shed for state changes and alerts, 0 discarded unwritten" \
    "$T/agent.log" || fail "the loss is not logged: $(grep 'never reached' "$T/agent.log")"
ok "SIGTERM after the faults: database intact ($(rows) checks), $dropped lost results logged, exit 1"
