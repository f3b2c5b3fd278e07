#!/bin/bash
# Started as root with `user = nobody`, the agent opens what needs
# privilege (the ICMP socket, the listen socket, the database) and then
# runs as nobody: /proc shows its ids and no capabilities, and it still
# stores results, pings 127.0.0.1, answers the API and reloads.  Skipped
# (exit 77) when not run as root.
. "$abs_top_srcdir/tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root to drop privileges"
	exit 77
fi
uid=$(id -u nobody 2>/dev/null) || { echo "SKIP: no user nobody"; exit 77; }
gid=$(id -g nobody)

start_httpd web
# As an administrator would set it up: the database folder belongs to
# the service user; the configuration stays root's, readable by all.
mkdir "$T/db"
chown nobody:"$gid" "$T/db"
write_conf() { # $1: extra section
	cat >"$T/agent.ini" <<INI
[agent]
database = db/agent.db
listen = 127.0.0.1:0
user = nobody

[monitor:loopback]
type = ping
host = 127.0.0.1
interval = 300ms

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 300ms
$1
INI
}
write_conf ""
chmod 644 "$T/agent.ini"
DB="$T/db/agent.db"
start_agent "$T/agent.ini"
wait_until 10 grep -q "running as user nobody" "$T/agent.log" ||
    fail "no privilege drop logged"

ids() { awk -v k="$1:" '$1 == k { print $2, $3, $4, $5 }' "/proc/$AGENT_PID/status"; }
[ "$(ids Uid)" = "$uid $uid $uid $uid" ] || fail "Uid: $(ids Uid)"
[ "$(ids Gid)" = "$gid $gid $gid $gid" ] || fail "Gid: $(ids Gid)"
groups=$(awk '$1 == "Groups:" { $1 = ""; print }' "/proc/$AGENT_PID/status")
[ -z "${groups// /}" ] || fail "supplementary groups kept: $groups"
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$AGENT_PID/status" ||
    fail "capabilities kept: $(grep ^Cap "/proc/$AGENT_PID/status")"
ok "runs as nobody (uid $uid, gid $gid), no groups, no capabilities"

rows() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1' AND c.ok = 1"; }
has_rows() { [ "$(rows "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
wait_until 15 has_rows loopback 1 || fail "no ping stored"
n=$(rows loopback)
m=$(rows web)
wait_until 15 has_rows loopback $((n + 3)) || fail "ping stopped working after the drop"
wait_until 15 has_rows web $((m + 3)) || fail "database not written after the drop"
[ "$(stat -c %U "$DB")" = nobody ] || fail "database not handed to nobody"
[ "$(stat -c %U "$DB.lock")" = nobody ] || fail "database lock not handed to nobody"
[ "$(curl -fsS "$API/healthz")" = ok ] || fail "API after the drop"
ok "after the drop: ICMP to 127.0.0.1 works, results are stored, the API answers"

write_conf "
[monitor:loopback-again]
type = ping
host = 127.0.0.1
interval = 300ms"
kill -HUP "$AGENT_PID"
wait_until 15 has_rows loopback-again 2 || fail "ping added by reload does not run"
stop_agent
[ "$(sql "$DB" "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
ok "reload as nobody adds a working ping monitor; clean stop"
