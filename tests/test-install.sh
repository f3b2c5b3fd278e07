#!/bin/bash
# The installed layout, from a DESTDIR install of this build: the sample
# configuration passes `watchpost -t` as installed, the systemd unit points
# at installed files (and passes `systemd-analyze verify` where systemd is
# installed), watchpost-plugin.pc names the plugin directory, and the
# out-of-tree example plugin (examples/file-check) builds against the
# installed header, installs with its own Makefile and runs in the agent.
# Finally `make uninstall` removes every file again.
. "$abs_top_srcdir/tests/lib.sh"

R="$T/root"
make -C "$abs_top_builddir" -s install DESTDIR="$R" >"$T/install.log" 2>&1 ||
    fail "make install: $(tail -5 "$T/install.log")"
bin=$(find "$R" -path '*/sbin/watchpost' -type f)
conf=$(find "$R" -path '*/etc/watchpost/watchpost.ini' -type f)
pc=$(find "$R" -name watchpost-plugin.pc -type f)
unit=$(find "$R" -name watchpost.service -type f)
for v in bin conf pc unit; do
	[ -n "${!v}" ] || fail "nothing installed for $v: $(find "$R" -type f)"
done

export PKG_CONFIG_PATH="${pc%/*}" PKG_CONFIG_SYSROOT_DIR="$R"
plugindir=$(pkg-config --variable=plugindir watchpost-plugin)
# pkgconf prefixes variables with the sysroot; pkg-config does not.
destdir=
case $plugindir in
"$R"/*) ;;
*) plugindir="$R$plugindir"; destdir="$R" ;;
esac
[ -f "$plugindir/http.so" ] || fail "plugindir $plugindir has no http.so"
pkg-config --cflags watchpost-plugin | grep -q -- "-I$R/" ||
    fail "pkg-config --cflags does not point into the install"
ok "watchpost-plugin.pc: plugindir holds the built-in plugins"

out=$("$bin" -t -c "$conf" -P "$plugindir" 2>"$T/t.err") ||
    fail "installed configuration is invalid: $(cat "$T/t.err")"
grep -q '^database = /' "$conf" || fail "installed database path is not absolute"
grep -q '^\[alert:demo\]' "$conf" && fail "installed configuration alerts the demo receiver"
ok "installed configuration passes -t ($out)"

exec_path=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
conf_path=$(sed -n 's/^ExecStart=.* -c \([^ ]*\).*/\1/p' "$unit")
[ -x "$R$exec_path" ] || fail "unit ExecStart $exec_path is not installed"
[ -f "$R$conf_path" ] || fail "unit configuration $conf_path is not installed"
db=$(sed -n 's/^database = //p' "$conf")
state=$(sed -n 's/^StateDirectory=//p' "$unit")
[ "${db%/*}" = "/var/lib/$state" ] ||
    fail "database $db is not in the unit's StateDirectory $state"
for k in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict \
    CapabilityBoundingSet=; do
	grep -qx "$k" "$unit" || fail "unit lacks $k"
done
if command -v systemd-analyze >/dev/null 2>&1; then
	# Verify a copy whose paths point into the DESTDIR.
	prefix=${exec_path%/sbin/watchpost}
	sed "s|$prefix/|$R$prefix/|g" "$unit" >"$T/watchpost.service"
	systemd-analyze verify --man=no "$T/watchpost.service" \
	    >"$T/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$T/verify.log")"
	ok "systemd unit: installed paths, sandboxing, systemd-analyze verify"
else
	ok "systemd unit: installed paths and sandboxing (no systemd-analyze here)"
fi

# The example plugin, built from a copy (the source tree may be read-only).
cp -R "$abs_top_srcdir/examples/file-check" "$T/file-check"
chmod -R u+w "$T/file-check"
make -C "$T/file-check" -s >"$T/build.log" 2>&1 ||
    fail "example build: $(cat "$T/build.log")"
make -C "$T/file-check" -s install DESTDIR="$destdir" >"$T/build.log" 2>&1 ||
    fail "example install: $(cat "$T/build.log")"
[ -f "$plugindir/file.so" ] || fail "file.so not in $plugindir"
ok "examples/file-check builds against the installed header and installs"

touch "$T/fresh"
touch -d '2 hours ago' "$T/stale"
cat >"$T/file.ini" <<INI
[agent]
listen = off

[monitor:fresh]
type = file
path = $T/fresh
max_age = 1h

[monitor:stale]
type = file
path = $T/stale
max_age = 1h

[monitor:any-age]
type = file
path = $T/stale

[monitor:missing]
type = file
path = $T/missing
retries = 0
INI
rc=0
"$bin" --once -c "$T/file.ini" -P "$plugindir" >"$T/once.out" 2>"$T/once.log" || rc=$?
cat "$T/once.out"
[ "$rc" -eq 2 ] || fail "--once with DOWN file monitors: exit $rc"
grep -q " $" "$T/once.out" && fail "--once lines end in blanks"
[ "$(awk '{ print index($0, " file ") }' "$T/once.out" | sort -u | wc -l)" -eq 1 ] ||
    fail "--once columns are not aligned"
grep -Eq "^fresh +file +UP " "$T/once.out" || fail "fresh file is UP"
grep -Eq "^any-age +file +UP " "$T/once.out" || fail "no max_age: any age is UP"
grep -Eq "^stale +file +DOWN .*modified [0-9]+s ago, max_age is 3600s" \
    "$T/once.out" || fail "stale file is DOWN with its age"
grep -Eq "^missing +file +DOWN .*No such file or directory" "$T/once.out" ||
    fail "missing file is DOWN"
rc=0
"$bin" --once -c "$T/file.ini" -P "$plugindir" fresh any-age >/dev/null || rc=$?
[ "$rc" -eq 0 ] || fail "--once on UP file monitors: exit $rc"
ok "file plugin in the agent: fresh UP, stale DOWN, missing DOWN"

printf '[agent]\nlisten = off\n[monitor:nopath]\ntype = file\nmax_age = soon\n' \
    >"$T/bad.ini"
rc=0
"$bin" -t -c "$T/bad.ini" -P "$plugindir" 2>"$T/bad.err" || rc=$?
[ "$rc" -eq 1 ] || fail "-t without path: exit $rc"
grep -q 'bad.ini:3: .*"path"' "$T/bad.err" ||
    fail "missing path is not reported at the section: $(cat "$T/bad.err")"
ok "file plugin: a missing path is a clear configuration error"

make -C "$T/file-check" -s uninstall DESTDIR="$destdir" >/dev/null
make -C "$abs_top_builddir" -s uninstall DESTDIR="$R" >"$T/install.log" 2>&1 ||
    fail "make uninstall: $(tail -5 "$T/install.log")"
left=$(find "$R" -type f)
[ -z "$left" ] || fail "left after uninstall: $left"
ok "make uninstall removes every installed file"
