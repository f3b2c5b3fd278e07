#!/bin/bash
# The command line: --version/--help, -t (FILE:LINE errors, exit 0/1),
# the loader's refusals, and --once exit codes.
. "$abs_top_srcdir/tests/lib.sh"

"$WATCHPOST" --version | grep -q "^watchpost " || fail "--version"
"$WATCHPOST" --help | grep -q -- "--check-config" || fail "--help"
ok "version and help"

# A valid configuration.
cat >"$T/good.ini" <<INI
[agent]
database = good.db
listen = off

[monitor:local-port]
type = tcp
host = 127.0.0.1
port = 9
interval = 5s

[monitor:long-url]
type = http
url = http://127.0.0.1:9/$(printf 'x%.0s' $(seq 1500))
INI
out=$("$WATCHPOST" -t -c "$T/good.ini" -P "$PLUGINS") || fail "-t on a valid file"
echo "$out" | grep -q "configuration OK" || fail "-t says OK"
[ ! -e "$T/good.db" ] || fail "-t must not create the database"
ok "-t accepts a valid file"

# Several errors, each FILE:LINE, all reported.
cat >"$T/bad.ini" <<INI
[agent]
retention_days = soon

[monitor:a]
type = tcp
host = 127.0.0.1
port = 99999
intervall = 5s

[monitor:b]
type = nosuchtype
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" 2>"$T/bad.err" || rc=$?
[ "$rc" -eq 1 ] || fail "-t on a bad file exits 1 (got $rc)"
grep -q "bad.ini:2: " "$T/bad.err" || fail "retention_days error at line 2"
grep -q "bad.ini:8: .*did you mean \"interval\"" "$T/bad.err" ||
    fail "unknown key with did-you-mean at line 8"
grep -q "bad.ini:11: .*nosuchtype" "$T/bad.err" || fail "unknown type at 11"
# The plugin judges port even though the core rejected the file.
grep -q "bad.ini:7: port" "$T/bad.err" || fail "plugin's port error at line 7"
[ "$(cut -d: -f2 "$T/bad.err" | tr '\n' ' ')" = "2 7 8 11 " ] ||
    fail "one line per error, in line order: $(cat "$T/bad.err")"
ok "-t reports every error as FILE:LINE"

# Core and plugin problems in one run (the plugin's key is judged even in
# a section the core rejected; a section missing a required key is not
# handed to its plugin's configure(), but the host's key parser still
# judges its values against the plugin's table: port at line 23), sorted by
# line; start-up refuses the same way.
cat >"$T/mix.ini" <<INI
[agent]
listen = off
database = mix.db

[monitor:web]
type = http
url = http://127.0.0.1:9/
expected_status = 7xx
interval = soon

[monitor:db]
type = tcp
host = 127.0.0.1
port = 80
retries = many

[alert:ops]
type = webhook
url = ftp://127.0.0.1/

[monitor:nohost]
type = tcp
port = 99999
INI
for mode in -t start; do
	rc=0
	if [ "$mode" = -t ]; then
		"$WATCHPOST" -t -c "$T/mix.ini" -P "$PLUGINS" 2>"$T/mix.err" ||
		    rc=$?
	else
		"$WATCHPOST" -c "$T/mix.ini" -P "$PLUGINS" 2>"$T/mix.err" ||
		    rc=$?
	fi
	[ "$rc" -eq 1 ] || fail "$mode on core + plugin errors: exit $rc"
	grep -q "mix.ini:8: expected_status" "$T/mix.err" ||
	    fail "$mode: the plugin's expected_status error: $(cat "$T/mix.err")"
	grep -q "mix.ini:9: interval" "$T/mix.err" ||
	    fail "$mode: the core's interval error: $(cat "$T/mix.err")"
	grep -q "mix.ini:15: retries" "$T/mix.err" ||
	    fail "$mode: the core's retries error: $(cat "$T/mix.err")"
	grep -q "mix.ini:19: url" "$T/mix.err" ||
	    fail "$mode: the alert plugin's url error: $(cat "$T/mix.err")"
	grep -q "mix.ini:21: .*missing the required key \"host\"" "$T/mix.err" ||
	    fail "$mode: missing host: $(cat "$T/mix.err")"
	grep -q "mix.ini:23: port" "$T/mix.err" ||
	    fail "$mode: the port's range from tcp's key table: $(cat "$T/mix.err")"
	[ "$(cut -d: -f2 "$T/mix.err" | tr '\n' ' ')" = "8 9 15 19 21 23 " ] ||
	    fail "$mode: six errors in line order: $(cat "$T/mix.err")"
done
[ ! -e "$T/mix.db" ] || fail "a refused start must not create the database"
ok "core and plugin errors reported together, in line order (-t and start-up)"

# Keys the plugin validates itself (the core does not know them).
printf '[agent]\nlisten = off\n[monitor:a]\ntype = tcp\nhost = 127.0.0.1\nport = 99999\n' >"$T/port.ini"
rc=0
"$WATCHPOST" -t -c "$T/port.ini" -P "$PLUGINS" 2>"$T/port.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "port.ini:6: port" "$T/port.err" ||
    fail "plugin-validated port at line 6: $(cat "$T/port.err")"
ok "plugins report their own keys as FILE:LINE"

# -t judges [cluster] without etcd: nothing is contacted, nothing created.
printf '[agent]\nlisten = off\ndatabase = %s/cl.db\n[cluster]\netcd = http://127.0.0.1:9\nlocation = fra\n[monitor:a]\ntype = tcp\nhost = 127.0.0.1\nport = 9\nlocations = fra, nyc\n' "$T" >"$T/cl.ini"
"$WATCHPOST" -t -c "$T/cl.ini" -P "$PLUGINS" >"$T/cl.out" 2>&1 ||
    fail "-t on a [cluster] file: $(cat "$T/cl.out")"
[ ! -e "$T/cl.db" ] || fail "-t on a [cluster] file created the database"
ok "-t accepts [cluster] without reaching etcd"

# Loader refusals: each test plugin is wrong in exactly one way.
refuse() {
	local type=$1 expect=$2
	printf '[agent]\nlisten = off\n[monitor:x]\ntype = %s\n' "$type" \
	    >"$T/r.ini"
	rc=0
	"$WATCHPOST" -t -c "$T/r.ini" -P "$TEST_PLUGINS" 2>"$T/r.err" || rc=$?
	[ "$rc" -eq 1 ] || fail "$type: expected exit 1, got $rc"
	grep -q "$expect" "$T/r.err" ||
	    fail "$type: expected \"$expect\" in: $(cat "$T/r.err")"
}
refuse notplugin "is not a watchpost plugin"
refuse badmagic "is not a watchpost plugin"
refuse abi1 "r.ini:4: unknown check type \"abi1\": .*/abi1.so: built for plugin ABI 1.0; this watchpost needs ABI 2.x: rebuild it against <watchpost/plugin.h> 2.x"
refuse newmajor "built for plugin ABI 3.0; this watchpost needs ABI 2.x: rebuild it against <watchpost/plugin.h> 2.x"
refuse newminor "built for plugin ABI 2.[0-9]*; this watchpost .*provides ABI 2.[0-9]*: upgrade watchpost"
refuse badkeys "badkeys.so: bad key table: key \"n\": a bool needs"
refuse misnamed "calls itself \"somethingelse\", not \"misnamed\""
refuse missing "no plugin .*missing.so"
ok "loader refuses foreign, incompatible and misnamed plugins"

# A plugin directory others can write to is refused.
mkdir "$T/open"
cp "$TEST_PLUGINS/blocking.so" "$T/open/"
chmod 777 "$T/open"
printf '[agent]\nlisten = off\n[monitor:x]\ntype = blocking\n' >"$T/o.ini"
rc=0
"$WATCHPOST" -t -c "$T/o.ini" -P "$T/open" 2>"$T/o.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "writable by other users" "$T/o.err" ||
    fail "world-writable plugin dir must be refused"
ok "world-writable plugin directory refused"

# --once: 0 all up, 2 any down, 3 configuration error.
cat >"$T/once.ini" <<INI
[agent]
listen = off
database = once.db

[monitor:up]
type = blocking
retries = 0

[monitor:down]
type = blocking
fail = true
retries = 1
retry_interval = 50ms
marker = $T/calls
INI
rc=0
"$WATCHPOST" --once -c "$T/once.ini" -P "$TEST_PLUGINS" up >"$T/once.out" || rc=$?
[ "$rc" -eq 0 ] || fail "--once up: exit $rc"
grep -Eq "^up +blocking +UP " "$T/once.out" || fail "--once line: $(cat "$T/once.out")"
rc=0
"$WATCHPOST" --once -c "$T/once.ini" -P "$TEST_PLUGINS" >"$T/once.out" || rc=$?
[ "$rc" -eq 2 ] || fail "--once with a down monitor: exit $rc"
grep -Eq "^down +blocking +DOWN .*told to fail" "$T/once.out" ||
    fail "--once down line: $(cat "$T/once.out")"
[ "$(wc -l <"$T/calls")" -eq 2 ] || fail "retries = 1 means 2 attempts"
[ ! -e "$T/once.db" ] || fail "--once must not write the database"
rc=0
"$WATCHPOST" --once -c "$T/once.ini" -P "$TEST_PLUGINS" nosuch 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "--once unknown name: exit $rc"
rc=0
"$WATCHPOST" --once -c "$T/bad.ini" -P "$PLUGINS" 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "--once bad config: exit $rc"
ok "--once exit codes 0/2/3, retries, no database"

# Input echoed in messages is quoted short and escaped: a 10 MB unknown key
# gives one short line, terminal escapes and invalid UTF-8 arrive as \xNN,
# and names longer than 128 bytes or with other characters are refused at
# their line.
{
	printf '[agent]\nlisten = off\n[monitor:m]\ntype = tcp\nhost = 127.0.0.1\nport = 9\n'
	head -c 10485760 /dev/zero | tr '\0' k
	printf ' = 1\n\033[31m\377 = 2\n[monitor:%s]\ntype = tcp\n' \
	    "$(printf 'n%.0s' $(seq 129))"
	printf '[monitor:a%sb]\ntype = tcp\n' "$(printf '\033')"
	printf '[monitor:%s]\ntype = tcp\nhost = 127.0.0.1\nport = 9\n' \
	    "$(printf 'n%.0s' $(seq 128))"
	printf '[monitor:down-on-purpose.v2_x]\ntype = tcp\nhost = 127.0.0.1\nport = 9\n'
} >"$T/junk.ini"
rc=0
"$WATCHPOST" -t -c "$T/junk.ini" -P "$PLUGINS" 2>"$T/junk.err" || rc=$?
[ "$rc" -eq 1 ] || fail "-t on junk: exit $rc"
[ "$(wc -c <"$T/junk.err")" -lt 1200 ] ||
    fail "a 10 MB key must not be echoed whole: $(wc -c <"$T/junk.err") bytes"
[ "$(cut -d: -f2 "$T/junk.err" | tr '\n' ' ')" = "7 8 9 11 " ] ||
    fail "one line per problem, at its line: $(head -c 2000 "$T/junk.err")"
grep -q '^'"$T"'/junk.ini:7: unknown key "kkkk*\.\.\." for type tcp$' "$T/junk.err" ||
    fail "the long key cut with ...: $(head -c 300 "$T/junk.err")"
[ "$(sed -n 1p "$T/junk.err" | wc -c)" -lt 200 ] || fail "the key's line is short"
grep -qF ':8: unknown key "\x1b[31m\xff" for type tcp' "$T/junk.err" ||
    fail "escape and invalid UTF-8 shown as \\xNN: $(cat -v "$T/junk.err")"
! LC_ALL=C grep -q "$(printf '[\033\377]')" "$T/junk.err" ||
    fail "raw control or non-UTF-8 bytes reached stderr"
grep -q ":9: monitor name \"nnnn*\.\.\.\": must be 1-128 characters of letters, digits, '\.', '_' or '-'$" "$T/junk.err" ||
    fail "129-byte name refused at its line: $(cat "$T/junk.err")"
grep -qF ':11: monitor name "a\x1bb": must be 1-128 characters' "$T/junk.err" ||
    fail "name with an escape byte refused, escaped: $(cat -v "$T/junk.err")"
ok "input in messages quoted short and escaped; long or odd names refused at their line"

# The log writer escapes what reaches it too: a keyword with an escape and
# an invalid byte, echoed in the DOWN line (the http plugin shows control
# bytes as '?' itself; the invalid byte is the log's to escape).
start_httpd web
cat >"$T/esc.ini" <<INI
[agent]
listen = off
database = esc.db
[monitor:esc]
type = http
url = http://127.0.0.1:$web_PORT/body/hello
keyword = $(printf '\033[2J\377')boom
interval = 1h
timeout = 2s
INI
rc=0
"$WATCHPOST" --once -c "$T/esc.ini" -P "$PLUGINS" >"$T/esc.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--once on the keyword monitor: exit $rc"
grep -qF 'keyword "?[2J\xffboom" not found' "$T/esc.out" ||
    fail "--once escapes the detail: $(cat -v "$T/esc.out")"
! LC_ALL=C grep -q "$(printf '[\033\377]')" "$T/esc.out" ||
    fail "raw control or non-UTF-8 bytes reached --once's table"
start_agent "$T/esc.ini"
wait_until 10 grep -q "esc: pending -> DOWN" "$T/agent.log" ||
    fail "no DOWN line for the keyword monitor"
stop_agent
grep -qF 'keyword "?[2J\xffboom" not found' "$T/agent.log" ||
    fail "keyword escaped in the log: $(grep -a DOWN "$T/agent.log" | cat -v)"
! LC_ALL=C grep -q "$(printf '[\033\377]')" "$T/agent.log" ||
    fail "raw control or non-UTF-8 bytes reached the log"
ok "the log and --once escape control bytes and invalid UTF-8"

# Durations: checks that cannot fit their interval warn (-t still exits 0);
# exponents, hex, inf and absurd values are refused.
cat >"$T/fit.ini" <<INI
[agent]
listen = off
[monitor:slow]
type = tcp
host = 127.0.0.1
port = 9
interval = 5s
timeout = 20s
[monitor:retries]
type = tcp
host = 127.0.0.1
port = 9
interval = 10s
timeout = 3s
retries = 3
[monitor:fits]
type = tcp
host = 127.0.0.1
port = 9
interval = 10s
timeout = 2s
INI
rc=0
"$WATCHPOST" -t -c "$T/fit.ini" -P "$PLUGINS" >"$T/fit.out" 2>"$T/fit.err" || rc=$?
[ "$rc" -eq 0 ] || fail "-t with warnings only: exit $rc: $(cat "$T/fit.err")"
grep -q "configuration OK (3 monitors)" "$T/fit.out" || fail "-t says OK"
grep -qx "$T/fit.ini:8: warning: timeout 20s is longer than interval 5s: a check that times out runs into its next slot, which is skipped" "$T/fit.err" ||
    fail "timeout > interval warning: $(cat "$T/fit.err")"
grep -q "^$T/fit.ini:15: warning: a failing check takes up to 15s (timeout 3s x (1 + retries 3) + retry_interval x retries), longer than interval 10s" "$T/fit.err" ||
    fail "retries warning: $(cat "$T/fit.err")"
[ "$(wc -l <"$T/fit.err")" -eq 2 ] || fail "two warnings: $(cat "$T/fit.err")"
for v in 1e3 0x10 0x1p3 inf nan -5 9000000000000s 8d; do
	printf '[agent]\nlisten = off\n[monitor:m]\ntype = tcp\nhost = 127.0.0.1\nport = 9\ninterval = %s\n' "$v" >"$T/dur.ini"
	rc=0
	"$WATCHPOST" -t -c "$T/dur.ini" -P "$PLUGINS" 2>"$T/dur.err" || rc=$?
	[ "$rc" -eq 1 ] && grep -q "dur.ini:7: interval: \"$v\" is" "$T/dur.err" ||
	    fail "interval = $v must be refused at line 7: $(cat "$T/dur.err")"
done
ok "-t warns on checks that cannot fit their interval; odd durations refused"

# Messages name each thing once.
mkdir "$T/bogus"
echo "this is not a shared object" >"$T/bogus/bogus.so"
printf '[agent]\nlisten = off\n[monitor:x]\ntype = bogus\n' >"$T/bogus.ini"
rc=0
"$WATCHPOST" -t -c "$T/bogus.ini" -P "$T/bogus" 2>"$T/bogus.err" || rc=$?
[ "$rc" -eq 1 ] || fail "bogus.so: exit $rc"
grep -qx "$T/bogus.ini:4: unknown check type \"bogus\": $T/bogus/bogus.so is not a shared object (no ELF header): remove it from $T/bogus" "$T/bogus.err" ||
    fail "a text file as a plugin: $(cat "$T/bogus.err")"
start_httpd busy
printf '[agent]\nlisten = 127.0.0.1:%s\ndatabase = busy.db\n' "$busy_PORT" >"$T/busy.ini"
rc=0
"$WATCHPOST" -c "$T/busy.ini" -P "$PLUGINS" 2>"$T/busy.err" || rc=$?
[ "$rc" -eq 1 ] || fail "listen on a busy port: exit $rc"
grep -qx "watchpost: listen 127.0.0.1:$busy_PORT: cannot bind: Address already in use" "$T/busy.err" ||
    fail "bind error named once: $(cat "$T/busy.err")"
printf '[agent]\nlisten = off\ndatabase = %s/no/such/dir/x.db\n' "$T" >"$T/nodb.ini"
rc=0
"$WATCHPOST" -c "$T/nodb.ini" -P "$PLUGINS" 2>"$T/nodb.err" || rc=$?
[ "$rc" -eq 1 ] || fail "database in a missing folder: exit $rc"
[ "$(grep -o "$T/no/such/dir/x.db" "$T/nodb.err" | wc -l)" -eq 1 ] ||
    fail "database error names the file once: $(cat "$T/nodb.err")"
# A name that cannot resolve, in a private network namespace so that the
# lookup cannot leave the machine.
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
	printf '[agent]\nlisten = off\n[monitor:dns]\ntype = http\nurl = http://no-such-host.invalid/\ntimeout = 5s\nretries = 0\n' >"$T/dns.ini"
	rc=0
	unshare --net "$WATCHPOST" --once -c "$T/dns.ini" -P "$PLUGINS" \
	    >"$T/dns.out" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "--once on an unresolvable name: exit $rc: $(cat "$T/dns.out")"
	grep -Eq "^dns +http +DOWN +.* dns: could not resolve the host name$" "$T/dns.out" ||
	    fail "dns reason named once: $(cat "$T/dns.out")"
	ok "plugin, listen, database and dns errors name each thing once"
else
	ok "plugin, listen and database errors name each thing once (dns: skipped, needs root for a network namespace)"
fi

# SIGTERM: checks in flight may hold the stop for the drain limit (10 s),
# then they are cancelled and the agent exits 0, whatever their timeout.
cat >"$T/hang.ini" <<INI
[agent]
listen = off
database = hang.db
[monitor:hang]
type = http
url = http://127.0.0.1:$web_PORT/hang
interval = 2h
timeout = 1h
retries = 0
INI
start_agent "$T/hang.ini"
wait_until 10 grep -q "started: 1 monitor" "$T/agent.log" || fail "hang agent start"
sleep 0.5
kill -TERM "$AGENT_PID"
i=0
while kill -0 "$AGENT_PID" 2>/dev/null && [ "$i" -lt 450 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -0 "$AGENT_PID" 2>/dev/null && fail "agent still running 45 s after SIGTERM"
rc=0
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "agent exited $rc after the drain limit"
grep -q "shutdown: 1 check(s) and alert(s) still running after 10 s; cancelling them" "$T/agent.log" ||
    fail "the drain limit is logged: $(tail -5 "$T/agent.log")"
ok "SIGTERM with a check blocked for an hour: cancelled at the drain limit, exit 0"
