#!/bin/bash
# `log = syslog`: lines go to the system logger (facility daemon, tagged
# watchpost[PID]), not to stderr.  The agent runs in a private mount
# namespace whose /dev/log is tests/logsink's socket, so the test needs no
# syslog daemon and leaves the machine's alone.  Skipped (exit 77) where
# mount namespaces are not available (not root, or a locked-down container).
. "$abs_top_srcdir/tests/lib.sh"

LOGSINK="$abs_top_builddir/tests/logsink"
if [ "$(id -u)" -ne 0 ] || ! unshare --mount true 2>/dev/null; then
	echo "SKIP: needs a private mount namespace (root)"
	exit 77
fi

# A private /dev: the devices the agent may open, plus log, the sink.
mkdir "$T/dev"
for d in null zero random urandom; do touch "$T/dev/$d"; done
"$LOGSINK" "$T/dev/log" >"$T/sink.out" 2>"$T/sink.log" &
PIDS+=($!)
wait_until 10 grep -q READY "$T/sink.out" || fail "logsink did not start"

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = off
log = syslog

[monitor:closed]
type = tcp
host = 127.0.0.1
port = 1
retries = 0
interval = 500ms
INI
# `unshare` without --fork execs: $! is the agent's pid.
unshare --mount --propagation private sh -c '
	for d in null zero random urandom; do
		mount --bind "/dev/$d" "$1/dev/$d" || exit 1
	done
	mount --bind "$1/dev" /dev || exit 1
	exec "$2" -c "$1/agent.ini" -P "$3"' sh "$T" "$WATCHPOST" "$PLUGINS" \
    >"$T/agent.out" 2>"$T/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
wait_until 15 grep -q "monitor closed: pending -> DOWN" "$T/sink.out" ||
    fail "no state change in syslog: $(cat "$T/sink.out")"
stop_agent
cat "$T/sink.out"
# <30> is facility daemon (3) * 8 + info (6).
grep -Eq "^<30>.*watchpost\[$AGENT_PID\]: monitor closed: pending -> DOWN" \
    "$T/sink.out" || fail "not daemon.info with the pid"
grep -q "started" "$T/sink.out" || fail "start-up line not in syslog"
grep -q "pending -> DOWN" "$T/agent.log" && fail "log = syslog still writes stderr"
ok "log = syslog: daemon facility, watchpost[PID] tag, nothing on stderr"
