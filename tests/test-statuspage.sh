#!/bin/bash
# The status page and badges end to end, in a real browser.
#
# The real daemon watches four monitors on loopback (tests/testhttpd; one
# is down on purpose: its URL answers 500) and a fifth that [status]
# monitors hides.  curl checks the headers (CSP, Content-Type, cache),
# the token rule (public = false needs it; public = true, after SIGHUP,
# does not), HTML escaping of the title, group and footer, that the page
# quotes no URL or error text, and the badges (valid SVG, 404 for an
# unknown or hidden monitor, 400 for a bad window).  Then headless
# Chromium (Debian's chromium) loads the page: the DOM it renders has the
# four monitors, the down one marked down in words, 90 bars each, an SVG
# sparkline each, the "Partial outage" banner; its console shows no
# Content Security Policy violation (a control page proves the console
# would show one); and a screenshot PNG is written.
. "$abs_top_srcdir/tests/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "no $CHROMIUM: install Debian's chromium package" \
    "(apt-get install chromium; ./bootstrap installs it)"

start_httpd web
DB="$T/agent.db"
printf 's3cret-token-for-status\n' >"$T/token"
chmod 600 "$T/token"
EVIL='<script>alert(1)</script>'

write_ini() { # write_ini PUBLIC
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
api_token_file = token
include = conf.d

[status]
title = Test status $EVIL
monitors = web-*, tcp-*, broken
public = $1
footer = Footer & $EVIL

[monitor:web-ok]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 200ms
timeout = 2s
group = Web $EVIL
alerts = none

[monitor:web-two]
type = http
url = http://127.0.0.1:$web_PORT/status/204
expected_status = 204
interval = 200ms
timeout = 2s
group = Web $EVIL
alerts = none

[monitor:tcp-port]
type = tcp
host = 127.0.0.1
port = $web_PORT
interval = 200ms
timeout = 2s
alerts = none

[monitor:broken]
type = http
url = http://127.0.0.1:$web_PORT/status/500
interval = 200ms
timeout = 2s
retries = 0
alerts = none

[monitor:hidden-one]
type = tcp
host = 127.0.0.1
port = $web_PORT
interval = 200ms
alerts = none
INI
}
write_ini false
mkdir -p "$T/conf.d"
"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >/dev/null 2>"$T/t.log" ||
    fail "-t rejects the config: $(cat "$T/t.log")"
start_agent "$T/agent.ini"
AUTH="Authorization: Bearer s3cret-token-for-status"
api_state() {
	curl -fsS -H "$AUTH" "$API/api/monitors" | tr '{' '\n' |
	    grep "\"name\":\"$1\"" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}
for m in web-ok web-two tcp-port hidden-one; do
	EXPECT=up wait_until 20 is api_state "$m" || fail "$m never up"
done
EXPECT=down wait_until 20 is api_state broken || fail "broken never down"
n_open() { sql "$DB" "SELECT count(*) FROM incidents WHERE end_ms IS NULL"; }
EXPECT=1 wait_until 10 is n_open || fail "no open incident stored"

# ---- the token: public = false ----
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$API/")" = 401 ] || fail "page without the token: not 401"
[ "$(code "$API/badge/web-ok/status.svg")" = 401 ] ||
    fail "badge without the token: not 401"
[ "$(code -H "$AUTH" "$API/")" = 200 ] || fail "page with the token: not 200"
[ "$(code -H "Authorization: Bearer wrong" "$API/")" = 401 ] ||
    fail "page with a wrong token: not 401"
ok "public = false: the page and badges need the token"

# ---- public = true after SIGHUP ----
write_ini true
kill -HUP "$AGENT_PID"
public_now() { [ "$(code "$API/")" = 200 ]; }
wait_until 10 public_now || fail "public = true (reload): page still needs the token"
[ "$(code "$API/badge/web-ok/status.svg")" = 200 ] ||
    fail "public badge: not 200"
# The rest of the API still needs it.
[ "$(code "$API/api/monitors")" = 401 ] || fail "/api/monitors lost its token"
ok "public = true: page and badges without the token, the API still with it"

# ---- headers and contents (curl) ----
curl -sS -D "$T/page.h" -o "$T/page.html" "$API/" || fail "GET /"
tr -d '\r' <"$T/page.h" >"$T/page.hdr"
grep -qi '^content-type: text/html; charset=utf-8$' "$T/page.hdr" ||
    fail "page content type: $(cat "$T/page.hdr")"
csp=$(sed -n 's/^[Cc]ontent-[Ss]ecurity-[Pp]olicy: //p' "$T/page.hdr")
[ -n "$csp" ] || fail "no Content-Security-Policy header"
case "$csp" in
"default-src 'none'; style-src 'nonce-"*"'; script-src 'nonce-"*) ;;
*) fail "CSP not strict: $csp" ;;
esac
echo "$csp" | grep -q "unsafe" && fail "CSP allows unsafe-*: $csp"
nonce=$(echo "$csp" | sed -n "s/.*style-src 'nonce-\([^']*\)'.*/\1/p")
[ "$(grep -o "nonce=\"$nonce\"" "$T/page.html" | wc -l)" -eq 2 ] ||
    fail "the style and the script do not both carry the nonce"
# Every <style> and <script> carries it; nothing is loaded from elsewhere.
[ "$(grep -o '<script' "$T/page.html" | wc -l)" -eq 1 ] ||
    fail "more than one script element"
grep -Eq '(src|href)="(https?:)?//' "$T/page.html" &&
    fail "the page refers to an external asset"
grep -q ' style="' "$T/page.html" && fail "an inline style attribute (CSP blocks it)"
nonce2=$(curl -sS -D - -o /dev/null "$API/" | tr -d '\r' |
    sed -n "s/^[Cc]ontent-[Ss]ecurity-[Pp]olicy: .*style-src 'nonce-\([^']*\)'.*/\1/p")
[ -n "$nonce2" ] && [ "$nonce2" != "$nonce" ] || fail "the nonce is not fresh per answer"
grep -qi '^x-content-type-options: nosniff$' "$T/page.hdr" || fail "no nosniff"
ok "page headers: text/html, strict CSP with a fresh nonce, nosniff"

grep -q '<script>alert' "$T/page.html" && fail "unescaped <script> from the config"
n_esc=$(grep -o '&lt;script&gt;alert(1)&lt;/script&gt;' "$T/page.html" | wc -l)
[ "$n_esc" -ge 4 ] || fail "title, group and footer not escaped ($n_esc)"
grep -q 'Footer &amp; ' "$T/page.html" || fail "footer & not escaped"
grep -q "127.0.0.1:$web_PORT" "$T/page.html" && fail "the page shows a target URL"
grep -q '/status/500' "$T/page.html" && fail "the page shows a URL path"
grep -q 'hidden-one' "$T/page.html" && fail "a monitor [status] hides is shown"
err=$(sql "$DB" "SELECT error FROM incidents WHERE end_ms IS NULL")
[ -n "$err" ] || fail "the open incident has no error text to hide"
grep -qF "$err" "$T/page.html" && fail "the page quotes the error text: $err"
reason=$(sql "$DB" "SELECT reason FROM incidents WHERE end_ms IS NULL")
grep -q "($reason)" "$T/page.html" || fail "the reason word ($reason) is not shown"
ok "escaping; no URL, error text or hidden monitor on the page (reason \"$reason\" shown)"

[ "$(code "$API/?page=2")" = 404 ] || fail "page 2 of one page: not 404"
[ "$(code "$API/?page=x")" = 400 ] || fail "page=x: not 400"
[ "$(code "$API/?nope=1")" = 400 ] || fail "unknown parameter: not 400"
[ "$(code "$API/?group=nosuch")" = 404 ] || fail "unknown group: not 404"
g=$(curl -fsS "$API/?group=Web%20%3Cscript%3Ealert(1)%3C%2Fscript%3E")
[ "$(echo "$g" | grep -o 'class="mon ' | wc -l)" -eq 2 ] ||
    fail "group filter: not the 2 monitors of Web"
[ "$(code -X POST "$API/")" = 405 ] || fail "POST /: not 405"
ok "query parameters: page, group, unknown ones refused"

# ---- badges ----
badge() { # badge URL CODE -> body in $T/badge.svg, headers in $T/badge.hdr
	local c
	c=$(curl -sS -D "$T/badge.h" -o "$T/badge.svg" -w '%{http_code}' "$API$1")
	tr -d '\r' <"$T/badge.h" >"$T/badge.hdr"
	[ "$c" = "$2" ] || fail "$1: $c, expected $2"
	grep -qi '^content-type: image/svg+xml' "$T/badge.hdr" ||
	    fail "$1: content type $(grep -i content-type "$T/badge.hdr")"
	if command -v xmllint >/dev/null; then
		xmllint --noout "$T/badge.svg" 2>"$T/xmllint.log" ||
		    fail "$1: not XML: $(cat "$T/xmllint.log")"
	fi
	grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' "$T/badge.svg" ||
	    fail "$1: not an SVG"
}
badge /badge/web-ok/status.svg 200
grep -q '<title>web-ok: up</title>' "$T/badge.svg" || fail "status badge: $(cat "$T/badge.svg")"
grep -qi '^cache-control: public, max-age=60$' "$T/badge.hdr" ||
    fail "badge cache header: $(grep -i cache "$T/badge.hdr")"
badge /badge/broken/status.svg 200
grep -q '<title>broken: down</title>' "$T/badge.svg" || fail "down badge"
grep -q '#e05d44' "$T/badge.svg" || fail "down badge not red"
badge '/badge/web-ok/uptime.svg?window=30d' 200
grep -q '<title>uptime 30d: 100%</title>' "$T/badge.svg" ||
    fail "uptime badge: $(cat "$T/badge.svg")"
badge '/badge/broken/uptime.svg?window=24h' 200
grep -Eq '<title>uptime 24h: [0-9.]+%</title>' "$T/badge.svg" ||
    fail "uptime badge of broken: $(cat "$T/badge.svg")"
badge /badge/broken/uptime.svg 200
grep -q 'uptime 30d' "$T/badge.svg" || fail "default window is not 30d"
badge '/badge/web-ok/uptime.svg?window=5m' 400
badge /badge/nosuch/status.svg 404
badge /badge/hidden-one/status.svg 404
grep -q 'hidden-one' "$T/badge.svg" && fail "404 badge repeats the name"
ok "badges: SVG, state and uptime, 404 unknown or hidden, 400 bad window"

# ---- the browser ----
CHROME_ARGS=(--headless=new --no-sandbox --disable-gpu --no-first-run
    --user-data-dir="$T/chrome" --enable-logging=stderr --v=0)
chrome() { HOME="$T" timeout 120 "$CHROMIUM" "${CHROME_ARGS[@]}" "$@"; }

# Control: a page that breaks its own CSP shows it in the console.
cat >"$T/control.html" <<'HTML'
<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy"
content="default-src 'none'"><style>p{color:red}</style></head>
<body><p>control</p></body></html>
HTML
chrome --dump-dom "file://$T/control.html" >"$T/control.dom" 2>"$T/control.err" ||
    fail "chromium failed on the control page: $(tail -5 "$T/control.err")"
grep -q "Content Security Policy" "$T/control.err" ||
    fail "the console shows no CSP violation even for the control page"

chrome --dump-dom "$API/" >"$T/dom.html" 2>"$T/chrome.err" ||
    fail "chromium --dump-dom failed: $(tail -5 "$T/chrome.err")"
grep -q "Content Security Policy" "$T/chrome.err" &&
    fail "CSP violation: $(grep 'Content Security Policy' "$T/chrome.err")"
n=$(grep -o '<li class="mon ' "$T/dom.html" | wc -l)
[ "$n" -eq 4 ] || fail "DOM: $n monitors, expected 4"
for m in web-ok web-two tcp-port broken; do
	grep -q "data-monitor=\"$m\"" "$T/dom.html" || fail "DOM: no $m"
done
tr '\n' ' ' <"$T/dom.html" | sed 's/<li class="mon /\n&/g' >"$T/mons.txt"
grep 'data-monitor="broken"' "$T/mons.txt" | grep -q 'class="mon s-down"' ||
    fail "DOM: broken not marked down"
grep 'data-monitor="broken"' "$T/mons.txt" |
    grep -q 'data-state="down"><span aria-hidden="true">[^<]*</span> Down</span>' ||
    fail "DOM: broken's state not in words"
for m in web-ok web-two tcp-port; do
	grep "data-monitor=\"$m\"" "$T/mons.txt" | grep -q ' Up</span>' ||
	    fail "DOM: $m not up in words"
done
bars=$(grep -o '<li tabindex="0" class="[a-z0-9]*" aria-label="[0-9-]*: ' "$T/dom.html" | wc -l)
[ "$bars" -eq 360 ] || fail "DOM: $bars bars, expected 90 x 4"
today=$(date -u +%Y-%m-%d)
grep 'data-monitor="broken"' "$T/mons.txt" |
    grep -Eq "aria-label=\"$today: [0-9.]+% up, [1-9][0-9]* incidents?\"" ||
    fail "DOM: today's bar of broken has no uptime and incident"
sp=$(grep -o '<svg class="spark"[^>]*role="img"' "$T/dom.html" | wc -l)
[ "$sp" -eq 4 ] || fail "DOM: $sp sparklines, expected 4"
grep -q '<path d="M' "$T/dom.html" || fail "DOM: no sparkline path"
grep -q 'id="banner"[^>]*><span aria-hidden="true">[^<]*</span><strong>Partial outage</strong>' \
    "$T/dom.html" || fail "DOM: banner is not \"Partial outage\""
grep -q 'id="open-incidents"><li><strong>broken</strong> down since' "$T/dom.html" ||
    fail "DOM: broken is not an open incident"
ok "chromium DOM: 4 monitors, broken down in words, 360 bars, 4 sparklines, partial outage, no CSP violation"

chrome --screenshot="$T/page.png" --window-size=1200,900 "$API/" \
    >/dev/null 2>"$T/shot.err" || fail "chromium --screenshot failed: $(tail -5 "$T/shot.err")"
[ -s "$T/page.png" ] || fail "no screenshot written"
[ "$(head -c 8 "$T/page.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "the screenshot is not a PNG"
grep -q "Content Security Policy" "$T/shot.err" && fail "CSP violation (screenshot run)"
ok "chromium screenshot: $(stat -c %s "$T/page.png") bytes of PNG"
[ -n "${WP_STATUS_SCREENSHOT:-}" ] && cp "$T/page.png" "$WP_STATUS_SCREENSHOT"

# ---- the admin API's changes reach the page ----
body='{"type":"http","url":"http://127.0.0.1:'$web_PORT'/status/200","interval":"200ms","group":"Added"}'
c=$(curl -s -o "$T/put.out" -w '%{http_code}' -X PUT -H "$AUTH" \
    --data-binary "$body" "$API/api/monitors/web-new")
[ "$c" = 201 ] || fail "PUT web-new: $c $(cat "$T/put.out")"
on_page_up() {
	curl -fsS "$API/?group=Added" | tr '\n' ' ' |
	    grep -q 'data-monitor="web-new"><div class="top"><h4 class="name">web-new</h4><span class="state" data-state="up">'
}
wait_until 20 on_page_up || fail "a monitor PUT through the admin API is not up on the page"
[ "$(code "$API/badge/web-new/status.svg")" = 200 ] || fail "no badge for web-new"
c=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$AUTH" "$API/api/monitors/web-new")
[ "$c" = 204 ] || fail "DELETE web-new: $c"
gone() { [ "$(code "$API/badge/web-new/status.svg")" = 404 ]; }
wait_until 20 gone || fail "a deleted monitor still has a badge"
ok "admin API: a PUT monitor appears on the page (up, in its group), a DELETE removes it"
stop_agent

# [status] belongs in the main file.
printf '[status]\ntitle = elsewhere\n' >"$T/conf.d/status.ini"
if "$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1; then
	fail "-t accepts [status] in an included file"
fi
grep -q "conf.d/status.ini:1: \[status\] belongs in the main file" "$T/t.out" ||
    fail "[status] in an included file: $(cat "$T/t.out")"
rm "$T/conf.d/status.ini"
ok "[status] in an included file is FILE:LINE at -t"

# ---- 10,000 monitors: paged ----
{
	cat <<INI
[agent]
database = big.db
listen = 127.0.0.1:0

[status]
title = Ten thousand
INI
	for i in $(seq 1 10000); do
		printf '[monitor:m%05d]\ntype = tcp\nhost = 127.0.0.1\nport = %s\n' \
		    "$i" "$web_PORT"
		printf 'enabled = false\ngroup = g%03d\nalerts = none\n' \
		    $(( (i - 1) / 100 ))
	done
} >"$T/big.ini"
start_agent "$T/big.ini"
curl -fsS -o "$T/big1.html" "$API/" || fail "10,000 monitors: GET / failed"
[ "$(grep -o '<li class="mon ' "$T/big1.html" | wc -l)" -eq 50 ] ||
    fail "10,000 monitors: page 1 does not hold 50"
grep -q 'Page 1 of 200 (monitors 1–50 of 10000)' "$T/big1.html" ||
    fail "10,000 monitors: no pager"
grep -q 'data-monitor="m00001"' "$T/big1.html" || fail "page 1 starts elsewhere"
[ "$(grep -o 'href="/?group=g[0-9]*"' "$T/big1.html" | wc -l)" -eq 100 ] ||
    fail "10,000 monitors: not 100 group links"
curl -fsS -o "$T/big200.html" "$API/?page=200" || fail "page 200"
grep -q 'data-monitor="m10000"' "$T/big200.html" || fail "page 200 lacks m10000"
[ "$(code "$API/?page=201")" = 404 ] || fail "page 201 of 200: not 404"
curl -fsS -o "$T/g7.html" "$API/?group=g007&page=2" || fail "group page"
[ "$(grep -o '<li class="mon ' "$T/g7.html" | wc -l)" -eq 50 ] ||
    fail "group g007 page 2 does not hold 50"
grep -q 'data-monitor="m00751"' "$T/g7.html" || fail "group g007 page 2 starts elsewhere"
grep -q '10000 monitors: 0 up, 0 degraded, 0 down, 10000 paused' "$T/big1.html" ||
    fail "10,000 monitors: counts"
stop_agent
ok "10,000 monitors: 200 pages of 50, 100 groups, group filter"
