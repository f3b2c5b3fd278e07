#!/bin/bash
# A damaged database: the start-up check (PRAGMA quick_check, bounded in
# time) refuses a file with damaged pages, and a file that is not a
# database, with exit status 1 and a message that names the file and says
# what to do, and leaves the file as it was.  Damage found while running (the b-tree root
# pages of `checks` overwritten under the running agent) is fatal: one
# error line, no retries, the agent stops with status 1 and says how many
# results were lost.  Results lost any other way (the database still
# locked at shutdown) also make the exit status 1.
. "$abs_top_srcdir/tests/lib.sh"

DB="$T/agent.db"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = off

[monitor:closed]
type = tcp
host = 127.0.0.1
port = 1
retries = 0
interval = 100ms
alerts = none
INI

rows() { sql "$DB" "SELECT count(*) FROM checks"; }
at_least() { [ "$(rows 2>/dev/null || echo 0)" -ge "$1" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# refused WHAT: start on the file as it is; must exit 1 with the message
# naming the file, and leave it as it was.
refused() {
	local rc=0
	cp "$DB" "$T/before"
	timeout 20 "$WATCHPOST" -c "$T/agent.ini" -P "$PLUGINS" \
	    >"$T/refused.out" 2>"$T/refused.err" || rc=$?
	[ "$rc" -eq 1 ] || fail "$1: exit status $rc, not 1: $(cat "$T/refused.err")"
	grep -q "^watchpost: store: $DB: $2" "$T/refused.err" ||
	    fail "$1: message: $(cat "$T/refused.err")"
	grep -q "move .* aside" "$T/refused.err" || fail "$1: the message does not say what to do"
	cmp -s "$DB" "$T/before" || fail "$1: the file was changed"
}

# A database made by the agent, with many rows: the agent's schema and
# some checks, then 50,000 more rows, all in the main file.
start_agent "$T/agent.ini"
wait_until 15 at_least 5 || fail "the agent stores nothing"
stop_agent
sql "$DB" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
    WHERE i < 50000) INSERT INTO checks(monitor_id, ts, ok, error, reason)
    SELECT 1, i, 0, 'connection refused', 'refused' FROM n;
    PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
pages=$(sql "$DB" "PRAGMA page_count")
[ "$pages" -gt 200 ] || fail "only $pages pages"
cp "$DB" "$T/good.db"

# Damaged pages in the middle of the file.
dd if=/dev/urandom of="$DB" bs=4096 seek=$((pages / 2)) count=8 conv=notrunc 2>/dev/null
[ "$(sql "$DB" "PRAGMA quick_check" 2>&1)" != ok ] || fail "the damage is not detectable"
refused "damaged pages" "the database is damaged (Page "
ok "damaged pages: refused: $(cat "$T/refused.err")"

echo "just some text, not a database" >"$DB"
refused "a text file" "not an SQLite database"
ok "a text file: refused: $(cat "$T/refused.err")"

# The check is bounded in time: with its cap lowered to 1 ms (the test
# seam; a file too big for 5 s takes minutes to make) it is cut short, the
# agent says so and starts.
# The file is made big enough (about 20 MB, tens of ms to check) that the
# check always outlasts the 1 ms cap and the watchdog thread's start.
cp "$T/good.db" "$DB"
sql "$DB" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
    WHERE i < 500000) INSERT INTO checks(monitor_id, ts, ok, error, reason)
    SELECT 1, i, 0, 'connection refused', 'refused' FROM n;
    PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
WATCHPOST_STORE_CHECK_MS=1 start_agent "$T/agent.ini"
wait_until 15 grep -q "store: $DB: the integrity check was cut short after 1 ms" \
    "$T/agent.log" || fail "the check was not cut short"
wait_until 15 grep -q "started" "$T/agent.log" || fail "the agent did not start"
stop_agent
ok "the start-up check is cut short at its time cap, and the agent starts"

# Damage while running.  The pages are overwritten after a checkpoint has
# put everything in the main file; another connection's write then makes
# the agent drop its page cache and read the damaged pages back.
cp "$T/good.db" "$DB"
start_agent "$T/agent.ini"
n=$(rows)
wait_until 15 at_least $((n + 5)) || fail "the agent stores nothing"
sqlite3 "$DB" ".timeout 5000" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null ||
    fail "checkpoint"
roots=$(sql "$DB" "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'checks' AND rootpage > 0")
for p in $roots; do
	dd if=/dev/urandom of="$DB" bs=4096 seek=$((p - 1)) count=1 conv=notrunc 2>/dev/null
done
sqlite3 "$DB" ".timeout 5000" "INSERT OR REPLACE INTO meta VALUES ('poke', '1')" ||
    fail "write from another connection"
wait_until 30 gone "$AGENT_PID" || fail "the agent runs on with a damaged database"
rc=0
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc after damage at run time, not 1"
grep -q "error store: $DB: the database is damaged (database disk image is malformed): nothing more is written" \
    "$T/agent.log" || fail "the damage is not logged"
[ "$(grep -c 'store: write failed' "$T/agent.log")" -eq 0 ] ||
    fail "the damage was retried: $(grep -c 'store: write failed' "$T/agent.log") lines"
grep -q "database damaged: stopping" "$T/agent.log" || fail "the stop is not logged"
grep -Eq "error store: $DB: [1-9][0-9]* result\(s\) never reached the database" \
    "$T/agent.log" || fail "the loss is not counted"
ok "damage at run time: logged once, the agent stops, exit 1: $(grep 'never reached' "$T/agent.log" | sed 's/.*store: //')"

# Results lost at shutdown: another process holds the write lock through
# the SIGTERM and past the writer's give-up time, until the test releases
# it (a FIFO; bounded by timeout if the test fails first).
cp "$T/good.db" "$DB"
rm -f "$DB-wal" "$DB-shm"
start_agent "$T/agent.ini"
n=$(rows)
wait_until 15 at_least $((n + 5)) || fail "the agent stores nothing"
mkfifo "$T/release"
sqlite3 "$DB" ".timeout 5000" "BEGIN IMMEDIATE" \
    ".shell timeout 120 cat '$T/release' >/dev/null" "COMMIT" \
    >"$T/locker.out" 2>&1 &
LOCKER=$!
PIDS+=("$LOCKER")
wait_until 15 grep -q "store: write failed, retrying: database is locked" "$T/agent.log" ||
    fail "the lock did not stop the writes"
rc=0
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc with results lost, not 1"
grep -Eq "error store: $DB: [1-9][0-9]* result\(s\) never reached the database: 0 dropped because the queue was full, [0-9]* shed for state changes and alerts, [1-9][0-9]* discarded unwritten" \
    "$T/agent.log" || fail "the loss is not counted"
echo >"$T/release"
wait "$LOCKER" || fail "the lock holder failed: $(cat "$T/locker.out")"
[ "$(sql "$DB" "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
ok "results lost at shutdown: exit 1: $(grep 'never reached' "$T/agent.log" | sed 's/.*store: //')"
