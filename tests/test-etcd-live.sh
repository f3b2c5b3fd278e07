#!/bin/bash
# core/etcd.c against Debian's real etcd (etcd-server, /usr/bin/etcd) on
# loopback with a temporary data folder: grant, keepalive, a txn with a
# compare on create_revision, range with a prefix, a watch seeing puts and
# deletes, revoke deleting the attached key, a dead first endpoint,
# compaction (etcdctl compact) forcing a compacted watch, a silent stream
# (etcd SIGSTOPped) reported and reopened, auth with a token that is
# invalidated.  The steps themselves are in tests/etcd-drive.c.
. "$abs_top_srcdir/tests/lib.sh"

ETCD=${ETCD:-/usr/bin/etcd}
export ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
[ -x "$ETCD" ] || { echo "SKIP: $ETCD not installed (Debian: etcd-server)"; exit 77; }
[ -x "$ETCDCTL" ] || fail "$ETCDCTL missing (Debian: etcd-client)"
DRIVE="$abs_top_builddir/tests/etcd-drive"

# free_port: a port nothing listens on now (the kernel's choice).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Progress notifications twice a second: the silent-stream case is quick.
ETCD_EXTRA="--experimental-watch-progress-notify-interval 500ms"
start_etcd
LIVE="http://127.0.0.1:$ETCD_PORT"
ok "etcd $("$ETCD" --version | sed -n 's/^etcd Version: //p') on $LIVE"
# A port nothing listens on: the dead first endpoint.
DEAD="http://127.0.0.1:$(free_port)"

"$DRIVE" scenario "$LIVE" "$DEAD" "$ETCD_PID" >"$T/drive.out" 2>"$T/drive.log" ||
	{ cat "$T/drive.out"; fail "scenario"; }
cat "$T/drive.out"
for step in "grant through a dead first endpoint" "keepalive" \
    "compare on create_revision" "range with a prefix" \
    "saw the puts and the delete" "progress notifications keep" \
    "revoke deleted the attached key" \
    "lease not found" "watch compacted" "a silent stream is reported dead" \
    "every endpoint dead"; do
	grep -q "^ok - .*$step" "$T/drive.out" || fail "step missing: $step"
done

# Auth: a user with read-write on everything, root as etcd requires.
ctl() { "$ETCDCTL" --endpoints="$LIVE" --command-timeout=5s "$@" >/dev/null; }
ctl user add root:rootpw
ctl user grant-role root root
ctl user add wp:wppw
ctl role add wprole
ctl role grant-permission wprole readwrite '' --prefix=true
ctl user grant-role wp wprole
ctl auth enable
"$DRIVE" auth "$LIVE" wp wppw >>"$T/drive.out" 2>>"$T/drive.log" || fail "auth"
grep -q "^ok - a wrong password: ETCD_EAUTH" "$T/drive.out" || fail "auth step"

# A token the server forgets: auth off and on again drops every token.
# The driver waits on a FIFO between its two steps.
mkfifo "$T/go"
"$DRIVE" authagain "$LIVE" wp wppw <"$T/go" >"$T/authagain.out" \
    2>"$T/authagain.log" &
dr=$!
PIDS+=("$dr")
exec 7>"$T/go"
wait_until 20 grep -q '^READY' "$T/authagain.out" ||
	{ cat "$T/authagain.out"; fail "authagain: not ready"; }
ctl --user root:rootpw auth disable
ctl --user root:rootpw auth enable
echo go >&7
exec 7>&-
wait "$dr" || { cat "$T/authagain.out"; fail "authagain"; }
grep '^ok' "$T/authagain.out" >>"$T/drive.out"
grep -q "^ok - re-authenticated after the token was invalidated" "$T/drive.out" ||
	fail "re-authentication"
grep -q "auth token was refused; authenticating again" "$T/authagain.log" ||
	fail "the old token was not refused: nothing tested"
sed -n '/authenticated\|wrong password/p' "$T/drive.out"
ok "etcd client against the real etcd"
