#!/bin/bash
# The manual pages: groff formats each without a warning; watchpost.ini(5)
# documents every key the code accepts, in the right section; the worked
# example in watchpost-plugin(3) is examples/file-check verbatim; every
# command-line option is in --help and in watchpost(8).
. "$abs_top_srcdir/tests/lib.sh"

MAN5="$abs_top_srcdir/man/watchpost.ini.5"
MAN8="$abs_top_srcdir/man/watchpost.8"
MAN3="$abs_top_builddir/man/watchpost-plugin.3"

for page in "$MAN8" "$MAN5" "$MAN3"; do
	groff -man -Tutf8 -ww -z "$page" 2>"$T/groff.err" ||
	    fail "groff failed on $page"
	[ ! -s "$T/groff.err" ] || fail "groff warns on $page: $(cat "$T/groff.err")"
done
ok "groff -man -ww: no warnings in watchpost(8), watchpost.ini(5), watchpost-plugin(3)"

# Documented keys: "HEADING|key" for every `.TP` + `.B key` in the page,
# where HEADING is the latest .SH or .SS title.
awk '
	/^\.S[HS] / { h = substr($0, 5); gsub(/"/, "", h); next }
	/^\.TP/ { tp = 1; next }
	tp && /^\.B [a-z_]+$/ { print h "|" $2 }
	{ tp = 0 }
' "$MAN5" | sort -u >"$T/documented"
# Accepted keys, from the code: the key tables (WP_KEY entries) of the
# core in cfg.c and of each built-in plugin, named by its WP_CHECK_PLUGIN /
# WP_ALERT_PLUGIN.
table_keys() { # $1: file, $2: array name
	sed -n "/$2\[\] = {/,/};/p" "$1" |
	    sed -n 's/.*WP_KEY(WP_KT_[A-Z]*, "\([a-z_]*\)".*/\1/p'
}
{
	table_keys "$abs_top_srcdir/core/cfg.c" agent_keys |
	    sed 's/^/THE [agent] SECTION|/'
	table_keys "$abs_top_srcdir/core/cfg.c" monitor_keys |
	    sed 's/^/MONITOR SECTIONS|/'
	table_keys "$abs_top_srcdir/core/cfg.c" alert_keys |
	    sed 's/^/ALERT SECTIONS|/'
	for src in "$abs_top_srcdir"/plugins/*.c; do
		name=$(sed -n 's/^WP_\(CHECK\|ALERT\)_PLUGIN(\([a-z0-9_]*\),$/\2/p' \
		    "$src")
		[ -n "$name" ] || continue
		table=$(sed -n 's/^[[:space:]]*WP_KEYS(\([a-z_]*\),.*/\1/p' "$src")
		table_keys "$src" "$table" | sed "s/^/type = $name|/"
	done
} | sort -u >"$T/accepted"
[ "$(grep -c 'THE \[agent\]' "$T/accepted")" -ge 9 ] ||
    fail "could not read the agent keys from cfg.c"
grep -q '^type = http|url$' "$T/accepted" || fail "could not read the http keys"
missing=$(comm -23 "$T/accepted" "$T/documented")
[ -z "$missing" ] || fail "keys missing from watchpost.ini(5):
$missing"
extra=$(comm -13 "$T/accepted" "$T/documented")
[ -z "$extra" ] || fail "watchpost.ini(5) documents keys the code does not accept:
$extra"
ok "watchpost.ini(5) documents all $(wc -l <"$T/accepted") accepted keys, no others"

# The example, as a reader sees it, is the tested source.
render() { groff -man -Tascii -rLL=200n -P-cbou "$MAN3" 2>/dev/null; }
for pair in "file.c:file.c" "Makefile:Makefile"; do
	title=${pair%%:*}
	src="$abs_top_srcdir/examples/file-check/${pair#*:}"
	render | awk -v t="$title" '
		$0 == "   " t { on = 1; next }
		on && /^   [^ ]/ { exit }
		on { print }
	' | sed -e 's/^       //' -e 's/[[:space:]]*$//' |
	    sed -e '1{/^$/d}' -e '${/^$/d}' >"$T/shown"
	expand -t 8 "$src" | sed 's/[[:space:]]*$//' >"$T/source"
	diff "$T/source" "$T/shown" >"$T/diff" ||
	    fail "watchpost-plugin(3) shows a different $title: $(head -20 "$T/diff")"
done
ok "watchpost-plugin(3) shows examples/file-check exactly"

# Options: every long option of the code in --help and in watchpost(8).
opts=$(sed -n '/longopts\[\] = {/,/};/p' "$abs_top_srcdir/core/main.c" |
    sed -n 's/^\t\t{ "\([a-z-]*\)",.*/\1/p')
[ -n "$opts" ] || fail "could not read the options from main.c"
"$WATCHPOST" --help >"$T/help"
for o in $opts; do
	grep -q -- "--$o" "$T/help" || fail "--$o missing from --help"
	grep -q -- "\\\\-\\\\-${o//-/\\\\-}" "$MAN8" || fail "--$o missing from watchpost(8)"
done
ok "every option ($(echo $opts | wc -w)) is in --help and watchpost(8)"
