#!/bin/bash
# Privilege and exposure: each check here fails if its protection goes.
#   - the API listens on loopback by default;
#   - api_token_file guards every endpoint but /healthz; a token file that
#     other users can read is refused;
#   - plugins load only from a plugin_dir nobody else can write to, only
#     files nobody else can write to, and never through a symbolic link
#     that leads out of the directory;
#   - secrets can come from K_file keys, with the same file rules, and are
#     never quoted in messages;
#   - no shell: neither the daemon nor a plugin calls system(), popen(),
#     the PATH-searching exec functions, or names /bin/sh.
. "$abs_top_srcdir/tests/lib.sh"

# check_config FILE [PLUGIN_DIR]: run -t, leave stderr in $T/err, set rc.
check_config() {
	rc=0
	"$WATCHPOST" -t -c "$1" -P "${2:-$PLUGINS}" >/dev/null 2>"$T/err" || rc=$?
}

# ---- The API binds to loopback by default -------------------------------
# The default port is fixed (9405); when another program holds it this
# part cannot run here, which is said, not hidden.
cat >"$T/default.ini" <<INI
[agent]
database = default.db
INI
"$WATCHPOST" -c "$T/default.ini" -P "$PLUGINS" 2>"$T/default.log" &
pid=$!
PIDS+=($pid)
if wait_until 10 grep -q 'listening on' "$T/default.log"; then
	grep -q 'listening on 127.0.0.1:9405' "$T/default.log" ||
	    fail "default listen is not 127.0.0.1:9405"
	[ "$(curl -s http://127.0.0.1:9405/healthz)" = ok ] ||
	    fail "no answer on 127.0.0.1:9405"
	# A socket bound to all addresses would answer on 127.0.0.2 (and on
	# ::1) as well; one bound to 127.0.0.1 refuses there (curl exit 7).
	rc=0
	curl -s -m 5 http://127.0.0.2:9405/healthz >/dev/null || rc=$?
	[ "$rc" -eq 7 ] || fail "127.0.0.2:9405 answered (curl $rc): not loopback-only"
	rc=0
	curl -s -m 5 'http://[::1]:9405/healthz' >/dev/null || rc=$?
	[ "$rc" -eq 7 ] || fail "[::1]:9405 answered (curl $rc): bound to all addresses"
	kill -TERM "$pid"
	wait "$pid" || fail "default agent exit status"
	ok "API listens on 127.0.0.1:9405 by default, not on all addresses"
else
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	grep -q 'in use' "$T/default.log" ||
	    fail "default agent did not listen: $(cat "$T/default.log")"
	echo "# skip: port 9405 is in use on this machine"
fi

# ---- Bearer token --------------------------------------------------------
printf 's3cret-token\n' >"$T/token"
chmod 600 "$T/token"
cat >"$T/token.ini" <<INI
[agent]
database = token.db
listen = 127.0.0.1:0
api_token_file = token

[monitor:closed]
type = tcp
host = 127.0.0.1
port = 1
interval = 1h
alerts = none
INI
start_agent "$T/token.ini"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
for path in /api/monitors /api/monitor /metrics; do
	[ "$(code "$API$path")" = 401 ] || fail "$path without a token: not 401"
	[ "$(code -H 'Authorization: Bearer wrong' "$API$path")" = 401 ] ||
	    fail "$path with a wrong token: not 401"
	[ "$(code -H 'Authorization: Bearer s3cret-tokenX' "$API$path")" = 401 ] ||
	    fail "$path with a longer token: not 401"
	[ "$(code -H 'Authorization: Bearer s3cret-toke' "$API$path")" = 401 ] ||
	    fail "$path with a prefix of the token: not 401"
	[ "$(code -H 'Authorization: Basic s3cret-token' "$API$path")" = 401 ] ||
	    fail "$path with another scheme: not 401"
	[ "$(code -H 'Authorization: Bearer s3cret-token' "$API$path")" = 200 ] ||
	    fail "$path with the token: not 200"
done
[ "$(code "$API/healthz")" = 200 ] || fail "/healthz needs no token"
curl -s -H 'Authorization: Bearer s3cret-token' "$API/api/monitors" |
    grep -q '"closed"' || fail "authorised answer has the monitors"
stop_agent
ok "api_token_file: 401 without, with a wrong or partial token; 200 with it; /healthz open"

chmod 644 "$T/token"
rc=0
"$WATCHPOST" -c "$T/token.ini" -P "$PLUGINS" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "readable or writable by other users" "$T/err" ||
    fail "world-readable token file must be refused (rc $rc)"
grep -q "s3cret" "$T/err" && fail "the token leaked into a message"
ok "world-readable token file refused"

# ---- Plugin directory and files ------------------------------------------
cat >"$T/plug.ini" <<INI
[agent]
listen = off
[monitor:x]
type = blocking
INI
mkdir "$T/good"
cp "$TEST_PLUGINS/blocking.so" "$T/good/"
chmod 755 "$T/good"
check_config "$T/plug.ini" "$T/good"
[ "$rc" -eq 0 ] || fail "a safe plugin directory must load: $(cat "$T/err")"

# A plugin file others can write to.
mkdir "$T/wfile"
cp "$TEST_PLUGINS/blocking.so" "$T/wfile/"
chmod 666 "$T/wfile/blocking.so"
check_config "$T/plug.ini" "$T/wfile"
[ "$rc" -eq 1 ] && grep -q "blocking.so is writable by other users" "$T/err" ||
    fail "world-writable plugin file must be refused"

# A symbolic link out of the directory.
mkdir "$T/outside" "$T/linked"
cp "$TEST_PLUGINS/blocking.so" "$T/outside/"
ln -s "$T/outside/blocking.so" "$T/linked/blocking.so"
check_config "$T/plug.ini" "$T/linked"
[ "$rc" -eq 1 ] && grep -q "outside the plugin directory" "$T/err" ||
    fail "a plugin linked from outside plugin_dir must be refused"
# A link inside the directory is fine.
mkdir "$T/inlink"
cp "$TEST_PLUGINS/blocking.so" "$T/inlink/real-blocking.so"
ln -s real-blocking.so "$T/inlink/blocking.so"
check_config "$T/plug.ini" "$T/inlink"
[ "$rc" -eq 0 ] || fail "a link inside plugin_dir must load: $(cat "$T/err")"

# A directory its group can write to, when the group is not the owner's
# private group.
group=
if [ "$(id -u)" -eq 0 ]; then
	group=$(getent group daemon | cut -d: -f1 || true)
else
	for g in $(id -Gn); do
		[ "$g" != "$(id -un)" ] && { group=$g; break; }
	done
fi
if [ -n "$group" ]; then
	mkdir "$T/gw"
	cp "$TEST_PLUGINS/blocking.so" "$T/gw/"
	chgrp "$group" "$T/gw"
	chmod 775 "$T/gw"
	check_config "$T/plug.ini" "$T/gw"
	[ "$rc" -eq 1 ] && grep -q "is writable by its group" "$T/err" ||
	    fail "group-writable plugin_dir (group $group) must be refused"
	chmod 755 "$T/gw"
	check_config "$T/plug.ini" "$T/gw"
	[ "$rc" -eq 0 ] || fail "the same directory without g+w must load"
	ok "plugin_dir: group-writable ($group), world-writable file, link out refused"
else
	echo "# skip: no group other than the user's own to test g+w with"
	ok "plugin_dir: world-writable file and link out refused"
fi

# ---- Secrets from K_file keys --------------------------------------------
start_httpd web
printf 'http://127.0.0.1:%s/headers\n' "$web_PORT" >"$T/url.txt"
printf 'X-Secret: hunter2\n' >"$T/hdr.txt"
chmod 600 "$T/url.txt" "$T/hdr.txt"
cat >"$T/file.ini" <<INI
[agent]
listen = off

[monitor:via-file]
type = http
url_file = url.txt
header_file = hdr.txt
keyword = X-Secret: hunter2
INI
rc=0
"$WATCHPOST" --once -c "$T/file.ini" -P "$PLUGINS" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || fail "url_file/header_file check: exit $rc: $(cat "$T/out" "$T/err")"
grep -Eq "^via-file +http +UP" "$T/out" || fail "url_file monitor UP"

# Both K and K_file: an error at the second one's line.
cat >"$T/both.ini" <<INI
[agent]
listen = off
[monitor:both]
type = http
url = http://127.0.0.1:1/
url_file = url.txt
INI
check_config "$T/both.ini"
[ "$rc" -eq 1 ] && grep -q "^$T/both.ini:6: url_file: \"url\" is already set at line 5" "$T/err" ||
    fail "url and url_file together must be an error: $(cat "$T/err")"

# Unreadable, world-readable, multi-line: errors at the key's line, and the
# contents are never quoted.
printf 'http://127.0.0.1/?key=hunter3\nsecond\n' >"$T/two.txt"
chmod 600 "$T/two.txt"
cp "$T/url.txt" "$T/open.txt"
chmod 644 "$T/open.txt"
cat >"$T/bad.ini" <<INI
[agent]
listen = off
[monitor:a]
type = http
url_file = missing.txt
[monitor:b]
type = http
url_file = open.txt
[monitor:c]
type = http
url_file = two.txt
[alert:d]
type = webhook
url_file = open.txt
INI
check_config "$T/bad.ini"
[ "$rc" -eq 1 ] || fail "bad K_file values: exit $rc"
grep -q "^$T/bad.ini:5: url_file: cannot read $T/missing.txt: No such file" "$T/err" ||
    fail "missing K_file at its line"
grep -q "^$T/bad.ini:8: url_file: $T/open.txt is readable or writable by other users" "$T/err" ||
    fail "world-readable K_file at its line"
grep -q "^$T/bad.ini:11: url_file: $T/two.txt holds more than one line" "$T/err" ||
    fail "multi-line K_file at its line"
grep -q "^$T/bad.ini:14: url_file: $T/open.txt is readable" "$T/err" ||
    fail "K_file in an alert section"
grep -q "hunter" "$T/err" && fail "a secret file's contents leaked into a message"
ok "K_file keys: values from files; both set, unreadable, open and multi-line files refused at FILE:LINE"

# ---- No shell ------------------------------------------------------------
# Functions that run a shell or search PATH.  ping.so's last resort runs
# ping(8) by its full path with posix_spawn(), which is allowed.
n=0
for f in "$abs_top_builddir/watchpost" "$PLUGINS"/*.so; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	bad=$(nm -D --undefined-only "$f" | awk '{ sub(/@.*/, "", $NF); print $NF }' |
	    grep -Ex 'system|popen|execl|execlp|execle|execvp|execvpe|posix_spawnp|wordexp' || true)
	[ -z "$bad" ] || fail "$f calls $bad"
	if grep -qa '/bin/sh' "$f"; then
		fail "$f names /bin/sh"
	fi
done
[ "$n" -ge 5 ] || fail "expected the daemon and 4 plugins, checked $n files"
# The pipeline must see imports at all: testhttpd's MHD_start_daemon.
nm -D --undefined-only "$TESTHTTPD" | awk '{ sub(/@.*/, "", $NF); print $NF }' |
    grep -qx MHD_start_daemon || fail "nm does not list imported functions"
ok "no shell: $n binaries call no system/popen/PATH exec and name no /bin/sh"
