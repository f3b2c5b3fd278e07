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

# make_ca: a throwaway CA in $T (ca.pem, ca.key) for tests that need
# certificates; cert NAME CN SAN FROM TO then signs $T/NAME.pem and
# $T/NAME.key (SAN like "DNS:localhost,IP:127.0.0.1"; FROM and TO for
# date -d, such as "-1 day" and "+20 days").
make_ca() {
	cat >"$T/ca.cnf" <<'CNF'
[ca]
default_ca = ca_sect
[ca_sect]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = copy
[pol]
commonName = supplied
CNF
	: >"$T/index.txt"
	echo 01 >"$T/serial"
	(cd "$T" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key \
	    -out ca.pem -days 30 -subj "/CN=watchpost test CA/O=watchpost tests" \
	    2>/dev/null) || fail "openssl: CA"
}
cert() {
	local utc_from utc_to
	utc_from=$(date -u -d "$4" +%Y%m%d%H%M%SZ)
	utc_to=$(date -u -d "$5" +%Y%m%d%H%M%SZ)
	(cd "$T" &&
	openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
	    -subj "/CN=$2" -addext "subjectAltName=$3" 2>/dev/null &&
	openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
	    -in "$1.csr" -out "$1.pem" -startdate "$utc_from" \
	    -enddate "$utc_to" -notext >/dev/null 2>&1) ||
	    fail "openssl: certificate $1"
}

# free_port_try N: a likely free port for servers that cannot take port 0
# (the caller retries on a clash); N varies it between tries.  Below
# Linux's ephemeral range (32768 and up), where the suite's own outgoing
# connections would often hold the port.
free_port_try() { echo $(( 20000 + (RANDOM * 7 + $1 * 131) % 12000 )); }
# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# tls_server NAME CERT [ARGS...]: openssl s_server with $T/CERT.pem on a
# free loopback port; sets NAME_PORT.
tls_server() {
	local name=$1 crt=$2 try port
	shift 2
	for try in 1 2 3 4 5 6 7 8; do
		port=$(free_port_try "$try")
		openssl s_server -accept "127.0.0.1:$port" -cert "$T/$crt.pem" \
		    -key "$T/$crt.key" "$@" </dev/null >"$T/$name.log" 2>&1 &
		PIDS+=($!)
		# Alive and accepting: a clash makes s_server exit at once.
		if wait_until 5 port_open "$port" && kill -0 $! 2>/dev/null; then
			eval "${name}_PORT=$port"
			return 0
		fi
	done
	fail "openssl s_server $name did not start"
}

# start_smtpd NAME [ARGS...]: Debian's aiosmtpd (python3-aiosmtpd) on a
# free loopback port, ARGS passed on (--tlscert F --tlskey K offers
# STARTTLS); sets NAME_PORT.
start_smtpd() {
	local name=$1 try port py=/usr/bin/python3
	shift
	[ -x "$py" ] || py=python3
	"$py" -c 'import aiosmtpd' 2>/dev/null ||
	    fail "aiosmtpd is missing: install the Debian package python3-aiosmtpd"
	for try in 1 2 3 4 5 6 7 8; do
		port=$(free_port_try "$try")
		"$py" -m aiosmtpd -n -l "127.0.0.1:$port" "$@" \
		    >"$T/$name.log" 2>&1 &
		PIDS+=($!)
		if wait_until 10 port_open "$port" && kill -0 $! 2>/dev/null; then
			eval "${name}_PORT=$port"
			return 0
		fi
	done
	fail "aiosmtpd $name did not start"
}

# start_etcd: Debian's etcd (etcd-server) alone on loopback, its data in
# $T/etcd, with $ETCD_EXTRA's flags; sets ETCD_PORT and ETCD_PID.  Skips
# the test (77) without it.
# restart_etcd DOWN_SECONDS: stop it, wait, start it again on the same
# ports and data (its leases come back renewed to full length).
etcd_run() {
	local pp=$((ETCD_PORT + 1))
	etcd --name t --data-dir "$T/etcd" \
	    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
	    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	    --listen-peer-urls "http://127.0.0.1:$pp" \
	    --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
	    --initial-cluster "t=http://127.0.0.1:$pp" ${ETCD_EXTRA:-} \
	    >>"$T/etcd.log" 2>&1 &
	ETCD_PID=$!
	PIDS+=($ETCD_PID)
	local i=0
	while [ "$i" -lt 150 ]; do # 15 s, but not once it died (a clash)
		kill -0 "$ETCD_PID" 2>/dev/null || return 1
		curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 &&
		    return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
start_etcd() {
	local try
	command -v etcd >/dev/null || { echo "SKIP: no etcd (etcd-server)"; exit 77; }
	for try in 1 2 3 4 5; do # etcd needs fixed ports: retry on a clash
		ETCD_PORT=$(free_port_try "$try")
		etcd_run && return 0
		kill "$ETCD_PID" 2>/dev/null || true
		wait "$ETCD_PID" 2>/dev/null || true
		rm -rf "$T/etcd"
	done
	fail "etcd did not start"
}
restart_etcd() {
	kill -TERM "$ETCD_PID"
	wait "$ETCD_PID" 2>/dev/null || true
	sleep "$1"
	etcd_run || fail "etcd did not come back"
}

# Cluster tests: start_member NAME runs the agent of $T/NAME.ini (log
# $T/NAME.log, PID in APID[NAME]) and waits until it joined the cluster;
# api_of NAME is its API's http://host:port.
declare -A APID
start_member() {
	"$WATCHPOST" -c "$T/$1.ini" -P "$PLUGINS" >"$T/$1.out" \
	    2>"$T/$1.log" &
	APID[$1]=$!
	PIDS+=(${APID[$1]})
	wait_until 15 grep -q "cluster: joined" "$T/$1.log" ||
	    fail "$1 did not join"
}
api_of() {
	echo "http://$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' \
	    "$T/$1.log" | tail -1)"
}
