#!/bin/bash
# Two agents on one database: the agent locks DB.lock beside its database
# for its whole life, in every mode, so a second agent on the same file (in
# the foreground, or with -d and its own pidfile and port) exits 1 naming
# the first one's PID, before it opens the database.  The first agent's
# data is untouched and it runs on; --once, which never opens the
# database, is not blocked.  Once the first agent stops, the next starts.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
mkdir "$T/a" "$T/b"
DB="$T/a/agent.db"
conf() { # conf FILE MONITOR [EXTRA-AGENT-LINE]
	cat >"$1" <<INI
[agent]
database = $DB
listen = 127.0.0.1:0
${3:-}

[monitor:$2]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 100ms
alerts = none
INI
}
conf "$T/a/agent.ini" first
conf "$T/b/agent.ini" second "pidfile = $T/b/second.pid"

start_agent "$T/a/agent.ini"
FIRST=$AGENT_PID
rows() { sql "$DB" "SELECT count(*) FROM checks"; }
at_least() { [ "$(rows 2>/dev/null || echo 0)" -ge "$1" ]; }
wait_until 15 at_least 10 || fail "the first agent stores nothing"
[ "$(cat "$DB.lock")" = "$FIRST" ] || fail "lock file holds $(cat "$DB.lock"), not $FIRST"
ok "the first agent (pid $FIRST) holds $DB.lock"

# attempt NAME ARGS...: a second agent on the same database; it must exit 1
# at once (bounded: today's code would run on) naming the first's PID.
attempt() {
	local name=$1 rc=0
	shift
	timeout 20 "$WATCHPOST" -P "$PLUGINS" "$@" >"$T/$name.out" \
	    2>"$T/$name.err" || rc=$?
	[ "$rc" -eq 1 ] || fail "$name: exit status $rc, not 1: $(cat "$T/$name.err")"
	grep -qx "watchpost: database $DB is in use by another watchpost (pid $FIRST)" \
	    "$T/$name.err" || fail "$name: message: $(cat "$T/$name.err")"
}
attempt foreground -c "$T/a/agent.ini"
ok "a second foreground agent exits 1: $(cat "$T/foreground.err")"
attempt daemon -d -c "$T/b/agent.ini"
[ ! -e "$T/b/second.pid" ] || fail "the refused -d agent left its pidfile"
ok "a second -d agent (own pidfile and port) exits 1, leaves no pidfile"

# The first agent's data: nothing from the second ones, no write error,
# and it keeps storing.
[ "$(sql "$DB" "SELECT group_concat(name) FROM monitors")" = first ] ||
    fail "monitors: $(sql "$DB" "SELECT group_concat(name) FROM monitors")"
[ "$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name <> 'first'")" -eq 0 ] ||
    fail "checks of another monitor were stored"
n=$(rows)
wait_until 15 at_least $((n + 5)) || fail "the first agent stopped storing"
kill -0 "$FIRST" || fail "the first agent died"
# (The configuration's own warning, a timeout longer than the 100 ms
# interval, is not about the database.)
problems() { grep -E " (warn|error) " "$T/agent.log" | grep -v "agent.ini:[0-9]*: warning: timeout"; }
problems && fail "the first agent logged: $(problems)"
[ "$(cat "$DB.lock")" = "$FIRST" ] || fail "the lock file lost the first PID"
ok "the first agent's data is untouched and it runs on"

# --once writes nothing to the database and takes no lock.
rc=0
timeout 20 "$WATCHPOST" -P "$PLUGINS" -c "$T/a/agent.ini" --once \
    >"$T/once.out" 2>"$T/once.err" || rc=$?
[ "$rc" -eq 0 ] || fail "--once beside a running agent: exit $rc: $(cat "$T/once.err")"
grep -q "^first .* UP " "$T/once.out" || fail "--once output: $(cat "$T/once.out")"
ok "--once runs beside the agent"

# `rm agent.db*` takes the lock file too: the agent makes and locks it
# again, so a second agent is still refused.
rm -f "$DB.lock"
wait_until 15 grep -qx "$FIRST" "$DB.lock" || fail "the removed lock file was not made again"
grep -q "error database lock $DB.lock was removed or replaced; locked it again" "$T/agent.log" ||
    fail "the lock's removal is not logged"
attempt again -c "$T/a/agent.ini"
kill -0 "$FIRST" || fail "the first agent died"
ok "a removed lock file is made again, and a second agent is still refused"

# The lock goes with the first agent; the next one takes it.
stop_agent
start_agent "$T/b/agent.ini"
wait_until 15 grep -q "started" "$T/agent.log" || fail "the next agent did not start"
[ "$(cat "$DB.lock")" = "$AGENT_PID" ] || fail "lock file: $(cat "$DB.lock"), not $AGENT_PID"
stop_agent
ok "after the first stops, the next agent starts and takes the lock"
