#!/bin/bash
# The manual pages: groff formats each without a warning; watchpost.ini(5)
# documents every key of the key tables (watchpost --list-types --json), in
# the right section, required ones as required; the worked
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

# Documented keys: "HEADING|key|required" (or "optional") for every
# `.TP` + `.B key` in the page, where HEADING is the latest .SH or .SS
# title and "(required)" on the next line marks a required key.
awk '
	pending { print h "|" k "|" ($0 ~ /^\(required/ ? "required" : "optional"); pending = 0 }
	/^\.S[HS] / { h = substr($0, 5); gsub(/"/, "", h); next }
	/^\.TP/ { tp = 1; next }
	tp && /^\.B [a-z_]+$/ { k = $2; pending = 1 }
	{ tp = 0 }
' "$MAN5" | sort -u >"$T/documented"
# Accepted keys, from the key tables themselves: watchpost --list-types
# --json with the built plugins (the host's tables and each type's).
"$WATCHPOST" --list-types --json -c /dev/null -P "$PLUGINS" >"$T/types.json" ||
    fail "--list-types --json failed"
jq -r '
	def rows(h): .[] | "\(h)|\(.name)|\(if .required then "required" else "optional" end)";
	(.common.agent | rows("THE [agent] SECTION")),
	(.common.monitor | rows("MONITOR SECTIONS")),
	(.common.alert | rows("ALERT SECTIONS")),
	(.common.status | rows("THE [status] SECTION")),
	(.common.maintenance | rows("MAINTENANCE WINDOWS")),
	(.common.cluster // [] | rows("THE [cluster] SECTION")),
	(.types[] | .name as $n | .keys | rows("type = \($n)"))
' "$T/types.json" | sort -u >"$T/accepted"
[ "$(grep -c 'THE \[agent\]' "$T/accepted")" -ge 9 ] ||
    fail "could not read the agent keys from --list-types"
grep -q '^type = http|url|required$' "$T/accepted" ||
    fail "could not read the http keys from --list-types"
missing=$(comm -23 "$T/accepted" "$T/documented")
[ -z "$missing" ] || fail "keys missing from watchpost.ini(5) (or shown there as optional / required wrongly):
$missing"
extra=$(comm -13 "$T/accepted" "$T/documented")
[ -z "$extra" ] || fail "watchpost.ini(5) documents keys the tables do not have (or marks them wrongly):
$extra"
ok "watchpost.ini(5) documents all $(wc -l <"$T/accepted") keys of the --list-types tables, no others"

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
