#!/bin/bash
# The exec check type with Debian's monitoring-plugins-basic and scripts,
# through -t, --once and the real daemon: exit codes as Nagios means them,
# perfdata as measurements in SQLite and on /metrics, the exact
# environment, a script forking a sleeping grandchild killed with it at the
# deadline (no orphan left), huge output capped, exec_max respected.
. "$abs_top_srcdir/tests/lib.sh"

NP=/usr/lib/nagios/plugins
[ -x "$NP/check_dummy" ] ||
    fail "monitoring-plugins-basic is not installed (./bootstrap installs it)"

# ---- -t: what the key types cannot say --------------------------------
cat >"$T/bad.ini" <<INI
[agent]
listen = off

[monitor:rel]
type = exec
command = check_dummy

[monitor:missing]
type = exec
command = /nonexistent/check_x

[monitor:badenv]
type = exec
command = $NP/check_dummy
env = 1BAD=secret-value
env = GOOD=1
env = GOOD=2

[monitor:nocmd]
type = exec
arg = 1

[monitor:notexec]
type = exec
command = $T/bad.ini
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
cat "$T/t.out"
[ "$rc" -eq 1 ] || fail "-t on a bad file: exit 1, got $rc"
grep -q "bad.ini:6: command: \"check_dummy\" is not an absolute path" \
    "$T/t.out" || fail "relative command not refused at its line"
grep -q "bad.ini:10: command: /nonexistent/check_x: not found" "$T/t.out" ||
    fail "missing command not reported"
grep -q "bad.ini:15: env: entry 1 is not NAME=value" "$T/t.out" ||
    fail "bad env entry not reported"
grep -q "bad.ini:15: env: GOOD is set twice" "$T/t.out" ||
    fail "env name twice not reported"
grep -q "bad.ini:19:.*required key \"command\"" "$T/t.out" ||
    fail "missing command key not reported"
grep -q "bad.ini:25: command: .*not an executable file" "$T/t.out" ||
    fail "non-executable command not reported"
if grep -q "secret-value" "$T/t.out"; then
	fail "an env value (a secret) was quoted in a message"
fi
[ "$(wc -l <"$T/t.out")" -eq 6 ] || fail "one line per problem"
ok "-t: relative, missing, non-executable commands and bad env at FILE:LINE"

# ---- scripts ----------------------------------------------------------
# A plugin that forks a sleeping grandchild, records its pid, and waits.
cat >"$T/forker" <<SH
#!/bin/sh
sleep 600 &
echo \$! >>"$T/gpids"
wait
SH
# A first line of 2 MB.
cat >"$T/wide" <<SH
#!/bin/sh
head -c 2000000 /dev/zero | tr '\\0' x
echo
SH
# Perfdata, then 2 MB of long text (read and dropped beyond the cap).
cat >"$T/huge" <<SH
#!/bin/sh
echo "BIG OK | lines=3"
head -c 2000000 /dev/zero | tr '\\0' y
echo
SH
chmod 755 "$T/forker" "$T/wide" "$T/huge"

start_httpd web

# ---- --once -----------------------------------------------------------
cat >"$T/once.ini" <<INI
[agent]
listen = off

[monitor:d0]
type = exec
command = $NP/check_dummy
arg = 0
arg = all fine

[monitor:d1]
type = exec
command = $NP/check_dummy
arg = 1
arg = getting warm

[monitor:d2]
type = exec
command = $NP/check_dummy
arg = 2
arg = on fire
retries = 0

[monitor:d3]
type = exec
command = $NP/check_dummy
arg = 3
arg = no idea
retries = 0

[monitor:d4]
type = exec
command = /bin/sh
arg = -c
arg = echo odd; exit 4
retries = 0

[monitor:tcp-open]
type = exec
command = $NP/check_tcp
arg = -H
arg = 127.0.0.1
arg = -p
arg = $web_PORT

[monitor:env]
type = exec
command = /usr/bin/env
arg = -0
env = EXTRA=a b
env = PATH=/opt/bin

[monitor:wide]
type = exec
command = $T/wide
INI
rc=0
"$WATCHPOST" --once -c "$T/once.ini" -P "$PLUGINS" >"$T/out" 2>"$T/err.log" ||
    rc=$?
cut -c1-150 "$T/out"
[ "$rc" -eq 2 ] || fail "--once with DOWN monitors: exit 2, got $rc"
grep -Eq "^d0 +exec +UP .*all fine" "$T/out" || fail "exit 0: UP"
grep -Eq "^d1 +exec +DEGRADED .*warning: WARNING: getting warm" "$T/out" ||
    fail "exit 1: DEGRADED, reason warning"
grep -Eq "^d2 +exec +DOWN .*check: CRITICAL: on fire" "$T/out" ||
    fail "exit 2: DOWN, reason check"
grep -Eq "^d3 +exec +DOWN .*check: UNKNOWN: no idea" "$T/out" ||
    fail "exit 3: DOWN, reason check, UNKNOWN"
grep -Eq "^d4 +exec +DOWN .*check: exit 4: odd" "$T/out" ||
    fail "exit 4: DOWN, reason check, saying exit 4"
grep -Eq "^tcp-open +exec +UP .*TCP OK" "$T/out" ||
    fail "check_tcp against a listening loopback port: UP"
# exactly the environment: PATH replaced in place, the documented
# variables, the entry; nothing of ours (env -0: NULs shown as spaces)
grep -Eq "^env +exec +UP .* PATH=/opt/bin WATCHPOST_MONITOR=env WATCHPOST_TIMEOUT=10 EXTRA=a b$" \
    "$T/out" || fail "the environment is not exactly the documented one"
line=$(grep -E "^wide " "$T/out")
x=$(printf '%s' "$line" | tr -cd x | wc -c)
[ "$x" -ge 200 ] && [ "$x" -le 511 ] ||
    fail "2 MB first line: the detail is capped (saw $x bytes of it)"
ok "--once: check_dummy 0/1/2/3, exit 4, check_tcp, the exact environment, a capped 2 MB line"

# ---- the daemon ---------------------------------------------------------
DB="$T/agent.db"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
exec_max = 2

[monitor:disk]
type = exec
command = $NP/check_disk
arg = -w
arg = 0%
arg = -c
arg = 0%
arg = -p
arg = /
interval = 300ms

[monitor:tcp]
type = exec
command = $NP/check_tcp
arg = -H
arg = 127.0.0.1
arg = -p
arg = $web_PORT
interval = 300ms

[monitor:closed]
type = exec
command = $NP/check_tcp
arg = -H
arg = 127.0.0.1
arg = -p
arg = 1
interval = 300ms
retries = 0

[monitor:forker]
type = exec
command = $T/forker
interval = 1500ms
timeout = 1s
retries = 0

[monitor:huge]
type = exec
command = $T/huge
interval = 500ms
INI
start_agent "$T/agent.ini"

EXPECT=up
wait_until 20 is state_of disk || fail "disk never UP"
wait_until 20 is state_of tcp || fail "tcp never UP"
wait_until 20 is state_of huge || fail "huge output: never UP"
EXPECT=down
wait_until 20 is state_of closed || fail "check_tcp on a closed port never DOWN"

meas() { sql "$DB" "SELECT x.name FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1' ORDER BY c.id DESC, x.name LIMIT 1"; }
EXPECT=root_bytes
wait_until 20 is meas disk || fail "check_disk's perfdata not stored as root_bytes: $(meas disk)"
v=$(sql "$DB" "SELECT x.value FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'disk' AND x.name = 'root_bytes' LIMIT 1")
[ "${v%.*}" -gt 0 ] || fail "root_bytes is not a byte count: $v"
EXPECT=time_seconds
wait_until 20 is meas tcp || fail "check_tcp's time not stored as time_seconds: $(meas tcp)"
EXPECT=lines
wait_until 20 is meas huge || fail "perfdata before 2 MB of text lost: $(meas huge)"
curl -fsS "$API/metrics" >"$T/metrics"
grep -q '^watchpost_monitor_measurement{monitor="disk",type="exec",name="root_bytes"} [0-9]' \
    "$T/metrics" || fail "root_bytes not on /metrics"
grep -q '^watchpost_monitor_measurement{monitor="tcp",type="exec",name="time_seconds"} ' \
    "$T/metrics" || fail "time_seconds not on /metrics"
r=$(sql "$DB" "SELECT c.reason || ' ' || c.error FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'closed' ORDER BY c.id DESC LIMIT 1")
case "$r" in
"check connect to address 127.0.0.1 and port 1: Connection refused"*) ;;
*) fail "closed port: reason check with check_tcp's line, got: $r" ;;
esac
ok "daemon: check_disk and check_tcp perfdata in SQLite and on /metrics; a refused port DOWN with check_tcp's words"

# The forker is killed at each deadline with its grandchild.
timeouts() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'forker' AND c.reason = 'timeout'"; }
wait_until 30 at_least 3 timeouts || fail "forker: no timeouts recorded"
# A grandchild is gone when its /proc entry is, or it is a zombie waiting
# for whoever adopted it (init) to reap it: either way not running.
alive() {
	local n=0 pid st
	while read -r pid; do
		st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$pid/stat" \
		    2>/dev/null) || continue
		[ -n "$st" ] && [ "$st" != Z ] && n=$((n + 1))
	done <"$T/gpids"
	echo "$n"
}
gpids() { [ -f "$T/gpids" ] && wc -l <"$T/gpids" || echo 0; }
wait_until 30 at_least 3 gpids || fail "forker did not fork 3 grandchildren"
n=$(alive)
[ "$n" -le 1 ] || fail "$n grandchildren still alive (at most the current run's)"
ok "forker killed at the deadline ($(timeouts) timeouts), its grandchildren with it"

# exec_max = 2: never more than two commands at once (children of the agent).
children() {
	local f n=0 line
	for f in /proc/[0-9]*/stat; do
		# field 4 is the parent's pid, after "pid (comm) state"
		{ read -r line <"$f"; } 2>/dev/null || continue
		set -- ${line##*) }
		[ "${2:-}" = "$AGENT_PID" ] && n=$((n + 1))
	done
	echo "$n"
}
max=0
for _ in $(seq 1 20); do
	c=$(children)
	[ "$c" -gt "$max" ] && max=$c
	sleep 0.05
done
[ "$max" -le 2 ] || fail "exec_max = 2, but $max commands ran at once"
[ "$max" -ge 1 ] || fail "no command seen running"
ok "exec_max = 2: at most $max children at once"

sed -i 's/^exec_max = 2$/exec_max = 3/' "$T/agent.ini"
kill -HUP "$AGENT_PID"
wait_until 10 grep -q 'reload: \[agent\] exec_max 2 -> 3' "$T/agent.log" ||
    fail "a reload does not apply exec_max"
ok "a reload applies a new exec_max"

stop_agent
EXPECT=0
wait_until 10 is alive || fail "after stop, $(alive) grandchildren still alive"
ok "after SIGTERM no command or grandchild is left running"
