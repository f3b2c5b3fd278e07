#!/bin/bash
# -d and its pidfile: the pidfile (and the database's lock file) hold the
# daemon's PID while it runs; the pidfile is gone after a clean SIGTERM; a
# -d start that fails after writing it (the listen port is taken) leaves
# none; a pidfile that no longer names the agent is left alone.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd busy
PIDFILE="$T/agent.pid"
conf() { # conf LISTEN
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = $1
pidfile = $PIDFILE
log = stderr

[monitor:closed]
type = tcp
host = 127.0.0.1
port = 1
interval = 200ms
alerts = none
INI
}

# daemon: start with -d, which returns once the agent is up (exit 0) or
# failed (exit 1); sets DPID from the pidfile.
daemon() {
	local rc=0
	timeout 60 "$WATCHPOST" -d -c "$T/agent.ini" -P "$PLUGINS" \
	    >>"$T/agent.out" 2>>"$T/agent.log" || rc=$?
	return "$rc"
}
gone() { ! kill -0 "$1" 2>/dev/null; }

conf 127.0.0.1:0
daemon || fail "-d start failed"
[ -s "$PIDFILE" ] || fail "no pidfile"
DPID=$(cat "$PIDFILE")
PIDS+=("$DPID")
kill -0 "$DPID" || fail "pidfile names $DPID, which is not running"
# The database lock, taken after the fork, names the daemon too.
[ "$(cat "$T/agent.db.lock")" = "$DPID" ] ||
    fail "agent.db.lock names $(cat "$T/agent.db.lock"), not the daemon $DPID"
kill -TERM "$DPID"
wait_until 30 gone "$DPID" || fail "the daemon did not stop"
[ ! -e "$PIDFILE" ] || fail "pidfile left after a clean stop: $(cat "$PIDFILE")"
ok "clean SIGTERM removes the pidfile"

# The listen port is taken: start-up fails after the pidfile was written.
conf "127.0.0.1:$busy_PORT"
rc=0
daemon || rc=$?
[ "$rc" -eq 1 ] || fail "-d on a taken port: exit $rc, not 1"
grep -q "127.0.0.1:$busy_PORT" "$T/agent.log" || fail "the failure is not reported"
[ ! -e "$PIDFILE" ] || fail "a failed -d start left a pidfile: $(cat "$PIDFILE")"
ok "a failed -d start leaves no pidfile"

# A pidfile rewritten by someone else is not ours to remove.
conf 127.0.0.1:0
daemon || fail "-d start failed"
DPID=$(cat "$PIDFILE")
PIDS+=("$DPID")
echo 999999999 >"$PIDFILE"
kill -TERM "$DPID"
wait_until 30 gone "$DPID" || fail "the daemon did not stop"
[ "$(cat "$PIDFILE" 2>/dev/null)" = 999999999 ] || fail "someone else's pidfile was removed"
ok "a pidfile that names another process stays"

# Started as root with `user`, the agent may no longer remove a pidfile
# in a folder of root's: it empties it, and the next start takes it.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	rm -f "$PIDFILE"
	mkdir "$T/db"
	chown nobody "$T/db"
	conf 127.0.0.1:0
	sed -i "s|^database = .*|database = db/agent.db\nuser = nobody|" "$T/agent.ini"
	daemon || fail "-d start as root with user = nobody failed"
	DPID=$(cat "$PIDFILE")
	PIDS+=("$DPID")
	kill -TERM "$DPID"
	wait_until 30 gone "$DPID" || fail "the daemon did not stop"
	[ ! -s "$PIDFILE" ] || fail "pidfile still names $(cat "$PIDFILE")"
	daemon || fail "-d start after an emptied pidfile failed"
	DPID=$(cat "$PIDFILE")
	PIDS+=("$DPID")
	kill -TERM "$DPID"
	wait_until 30 gone "$DPID" || fail "the daemon did not stop"
	ok "after dropping privileges the pidfile is emptied, and the next start takes it"
fi
