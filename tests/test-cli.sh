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
# handed to its plugin), sorted by line; start-up refuses the same way.
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
	[ "$(cut -d: -f2 "$T/mix.err" | tr '\n' ' ')" = "8 9 15 19 21 " ] ||
	    fail "$mode: five errors in line order: $(cat "$T/mix.err")"
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
refuse newmajor "built for plugin ABI 2.0.*rebuild the plugin"
refuse newminor "built for plugin ABI 1.[0-9]*, but .*upgrade watchpost"
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
