# Shared helpers for the integration tests (bash).  Sourced, not run.
# Everything runs on loopback, in a private temporary folder, and every
# wait is bounded.
set -euo pipefail

: "${abs_top_builddir:?run through make check}"
: "${abs_top_srcdir:?run through make check}"
WATCHPOST="$abs_top_builddir/watchpost"
TESTHTTPD="$abs_top_builddir/tests/testhttpd"
PLUGINS="${WP_PLUGIN_DIR:-$abs_top_builddir/plugins/.libs}"
TEST_PLUGINS="${WP_TEST_PLUGIN_DIR:-$abs_top_builddir/tests/plugins/.libs}"

T=$(mktemp -d "${TMPDIR:-/tmp}/wp-test.XXXXXX")
chmod 755 "$T"
PIDS=()

# make check-valgrind sets WP_VALGRIND to a folder: every run of the daemon
# then goes through valgrind memcheck, which writes its report there and
# turns any error or leak into exit status 99.
if [ -n "${WP_VALGRIND:-}" ]; then
	cat >"$T/watchpost-valgrind" <<SH
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect \
    --log-file="$WP_VALGRIND/memcheck.%p.log" "$WATCHPOST" "\$@"
SH
	chmod 755 "$T/watchpost-valgrind"
	WATCHPOST="$T/watchpost-valgrind"
fi

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f (last 40 lines)" >&2
		grep -v " debug " "$f" | tail -n 40 >&2
	done
	exit 1
}
ok() { echo "ok - $*"; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
	local limit=$(( $1 * 10 )) i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -ge "$limit" ] && return 1
		sleep 0.1
	done
	return 0
}

# start_httpd NAME [ARGS...]: start tests/testhttpd, set ${NAME}_PORT.
start_httpd() {
	local name=$1 out
	shift
	out="$T/$name.out"
	"$TESTHTTPD" --port 0 "$@" >"$out" 2>"$T/$name.log" &
	PIDS+=($!)
	eval "${name}_PID=$!"
	wait_until 10 grep -q '^PORT ' "$out" || fail "$name did not start"
	eval "${name}_PORT=$(sed -n 's/^PORT //p' "$out" | head -1)"
}

# start_agent CONFIG [ARGS...]: run the daemon in the background; sets
# AGENT_PID and, when the API listens, API (http://127.0.0.1:PORT).
start_agent() {
	local conf=$1
	shift
	# One log per run, so waits below see only this agent's lines.
	if [ -f "$T/agent.log" ]; then
		cat "$T/agent.log" >>"$T/agent-previous.txt"
		: >"$T/agent.log"
	fi
	"$WATCHPOST" -c "$conf" -P "$PLUGINS" "$@" >"$T/agent.out" \
	    2>>"$T/agent.log" &
	AGENT_PID=$!
	PIDS+=($AGENT_PID)
	if grep -q '^listen *= *127' "$conf"; then
		wait_until 10 grep -q 'listening on' "$T/agent.log" ||
		    fail "agent API did not come up"
		API="http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' \
		    "$T/agent.log" | tail -1)"
	fi
}

# stop_agent: SIGTERM and wait; fails the test unless it exits 0.
stop_agent() {
	local rc=0
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" || rc=$?
	[ "$rc" -eq 0 ] || fail "agent exited $rc after SIGTERM"
}

sql() { sqlite3 -batch -noheader "$1" "$2"; }

# Polling predicates for wait_until, shared by the tests that watch the
# database ($DB) and the metrics ($API) of a running agent.
# is CMD...: CMD prints exactly $EXPECT.
is() { [ "$("$@" 2>/dev/null)" = "$EXPECT" ]; }
# at_least N CMD...: CMD prints a number (its integer part counts) >= N.
at_least() { local v; v=$("${@:2}") && [ -n "$v" ] && [ "${v%.*}" -ge "$1" ]; }
# metric NAME: the value of the unlabelled sample NAME on /metrics.
metric() { curl -fsS "$API/metrics" | sed -n "s/^$1 //p"; }
# state_of NAME, pending_of NAME: monitor NAME's stored state, and its
# undelivered outbox rows.
state_of() {
	sql "$DB" "SELECT s.state FROM state s JOIN monitors m ON m.id = s.monitor_id WHERE m.name = '$1'" 2>/dev/null
}
pending_of() {
	sql "$DB" "SELECT count(*) FROM outbox o JOIN monitors m ON m.id = o.monitor_id WHERE m.name = '$1'" 2>/dev/null
}
