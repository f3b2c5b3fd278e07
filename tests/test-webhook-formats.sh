#!/bin/bash
# Every webhook format from an INI file, end to end: the real daemon, one
# [alert:*] per format pointing at testhttpd's /svc/FORMAT receiver (which
# judges each body as the service would: tests/hookcheck.c), and a monitor
# that goes DOWN with a hostile error (quotes, backslashes, CR/LF, "{{",
# <!channel>, a forged header line) and comes back UP.  Each receiver must
# get a valid DOWN and a valid UP body; PagerDuty a trigger, then a resolve
# with the same dedup_key; no secret (URL token, routing key) in the log.
# Then the configuration errors `-t` reports as FILE:LINE.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd svc --record "$T/svc.rec"

# The daemon's own plugins plus the test plugin whose detail we choose.
mkdir "$T/plugins"
cp "$PLUGINS"/*.so "$T/plugins/"
cp "$TEST_PLUGINS/blocking.so" "$T/plugins/"

KEY=0123456789abcdefSeCrEtKey0123456
printf '%s\n' "$KEY" >"$T/pd.key"
chmod 600 "$T/pd.key"
printf '%s\n' "{{monitor}} went {{state}} ({{previous_state}} before): {{error}}" \
    >"$T/plain.tpl"
chmod 600 "$T/plain.tpl"   # the host reads every KEY_file as it reads a secret
base="http://127.0.0.1:$svc_PORT/svc"

formats="json slack discord teams mattermost ntfy gotify telegram pagerduty"
sections=
names=
for f in $formats; do
	names="$names${names:+, }to-$f"
	extra=
	url="url = $base/$f?token=SeCrEtTok3n"
	case $f in
	slack)	# the token-holding URL from a file, as deployed
		printf '%s\n' "$base/$f?token=SeCrEtTok3n" >"$T/slack.url"
		chmod 600 "$T/slack.url"
		url="url_file = $T/slack.url" ;;
	esac
	case $f in
	ntfy) extra="topic = ops-alerts" ;;
	telegram) extra="chat_id = -1001234" ;;
	pagerduty) extra="routing_key_file = $T/pd.key" ;;
	esac
	sections="$sections
[alert:to-$f]
type = webhook
$url
format = $f
$extra
timeout = 2s
"
done

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = off

[monitor:flip]
type = blocking
fail_from = $T/down
interval = 200ms
timeout = 200ms
retries = 0
alerts = $names, to-tpl-json, to-tpl-text

$sections
[alert:to-tpl-json]
type = webhook
url = $base/template
format = template
template = {"text": "{{monitor}} is {{state}}: {{error}}", "id": {{id}}, "since": "{{since}}"}
timeout = 2s

[alert:to-tpl-text]
type = webhook
url = $base/template
format = template
template_file = $T/plain.tpl
content_type = text/plain; charset=utf-8
timeout = 2s
INI

"$WATCHPOST" -t -c "$T/agent.ini" -P "$T/plugins" >"$T/t.out" 2>&1 ||
    fail "-t refused the configuration: $(cat "$T/t.out")"

# The error the monitor will report: every character that could break a
# JSON body or start a header line.
printf 'bad "quote" \\ back {{error}} }} <!channel> @here @everyone &amp;\r\nX-Injected: 1\r\n\r\n{"x":1}' \
    >"$T/down.txt"

transitions() { grep -c "monitor flip: .* -> [A-Z]" "$T/agent.log" || true; }
count() { grep -c "$1" "$T/svc.rec" 2>/dev/null || true; }
N_FORMATS=11   # nine presets and two templates

start_agent "$T/agent.ini" -P "$T/plugins"
EXPECT=1 wait_until 15 is transitions || fail "flip did not come up"
up_first=$(count ' ok ')
cp "$T/down.txt" "$T/down"
EXPECT=2 wait_until 15 is transitions || fail "flip did not go down"
EXPECT=$((up_first + N_FORMATS)) wait_until 30 is count ' ok ' ||
    fail "$(count ' ok ') valid bodies, want $((up_first + N_FORMATS))"
rm "$T/down"
EXPECT=3 wait_until 15 is transitions || fail "flip did not come back up"
EXPECT=$((up_first + 2 * N_FORMATS)) wait_until 30 is count ' ok ' ||
    fail "$(count ' ok ') valid bodies, want $((up_first + 2 * N_FORMATS))"
stop_agent

bad=$(grep -c ' bad:' "$T/svc.rec" || true)
[ "$bad" = 0 ] || fail "receivers refused $bad bodies: $(grep ' bad:' "$T/svc.rec")"
ok "every receiver accepted every body ($(count ' ok ') in all)"

# Each preset got a DOWN and then an UP (the first UP, from pending, may
# alert too: only the last two matter).
for f in $formats; do
	lines=$(grep -c "^$f ok " "$T/svc.rec" || true)
	[ "$lines" -ge 2 ] || fail "$f got $lines bodies"
done
grep "^slack ok " "$T/svc.rec" | tail -2 | head -1 | grep -q 'flip is DOWN' ||
    fail "slack DOWN: $(grep '^slack ok ' "$T/svc.rec")"
grep "^slack ok " "$T/svc.rec" | tail -1 | grep -q 'flip is UP' ||
    fail "slack UP: $(grep '^slack ok ' "$T/svc.rec" | tail -1)"
# The hostile text arrived as text: escaped for Slack, never expanded.
grep "^slack ok " "$T/svc.rec" | grep -q '&lt;!channel&gt; @here @everyone &amp;amp;' ||
    fail "slack did not escape <!channel>: $(grep '^slack ok ' "$T/svc.rec")"
grep -q '{{error}} }}' "$T/svc.rec" || fail "the error's {{error}} was changed"
# No mass mention: Discord's are off, Mattermost's broken (zero-width space).
grep "^discord ok " "$T/svc.rec" | tail -2 | head -1 |
    grep -q '"allowed_mentions":{"parse":\[\]}' || fail "discord mentions on"
grep "^mattermost ok " "$T/svc.rec" | tail -2 | head -1 |
    grep -q "@$(printf '\342\200\213')here" || fail "mattermost @here intact"
ok "each preset got DOWN then UP; the error's text arrived as text"

# PagerDuty: trigger then resolve, one dedup_key.
pd=$(grep '^pagerduty ok ' "$T/svc.rec" | grep -v '"event_action":"resolve"' |
    tail -1)
pr=$(grep '^pagerduty ok ' "$T/svc.rec" | tail -1)
echo "$pd" | grep -q '"event_action":"trigger"' || fail "no trigger: $pd"
echo "$pr" | grep -q '"event_action":"resolve"' || fail "no resolve last: $pr"
kd=$(echo "$pd" | grep -o '"dedup_key":"[^"]*"')
kr=$(echo "$pr" | grep -o '"dedup_key":"[^"]*"')
[ -n "$kd" ] && [ "$kd" = "$kr" ] || fail "dedup keys differ: $kd / $kr"
echo "$pd" | grep -q "\"routing_key\":\"$KEY\"" ||
    fail "routing key from routing_key_file missing"
ok "pagerduty: trigger, then resolve with the same $kd"

# Telegram and ntfy carry their keys.
grep '^telegram ok ' "$T/svc.rec" | tail -1 | grep -q '"chat_id":"-1001234"' ||
    fail "telegram chat_id"
grep '^ntfy ok ' "$T/svc.rec" | tail -1 | grep -q '"topic":"ops-alerts"' ||
    fail "ntfy topic"
# The templates: JSON (valid, checked by the receiver) and plain text.
grep '^template ok {"text": "flip is down: bad \\"quote\\" \\\\ back' \
    "$T/svc.rec" >/dev/null || fail "JSON template: $(grep '^template' "$T/svc.rec")"
grep -q '^template ok flip went up (down before): *$' "$T/svc.rec" ||
    fail "text template: $(grep '^template ok flip' "$T/svc.rec")"
ok "telegram, ntfy and both templates carry what was configured"

# No secret in any log line.
if grep -n -e SeCrEt -e "$KEY" "$T/agent.log" "$T/agent.out" "$T/t.out"; then
	fail "a secret reached the log"
fi
ok "no URL token or routing key in the log"

# Configuration errors at -t, FILE:LINE each.
cat >"$T/bad.ini" <<INI
[agent]
listen = off

[monitor:m]
type = blocking
alerts = tg, pd, tpl, notjson

[alert:tg]
type = webhook
url = $base/telegram
format = telegram

[alert:pd]
type = webhook
url = $base/pagerduty
format = pagerduty
chat_id = 42

[alert:tpl]
type = webhook
url = $base/template
format = template
template = {"t": "{{monitor}} {{stat}}"}

[alert:notjson]
type = webhook
url = $base/template
format = template
template = {"latency": {{latency_ms}}}
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$T/plugins" >"$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "-t on bad.ini exited $rc: $(cat "$T/bad.out")"
for want in \
    "bad.ini:11: format: format = telegram needs chat_id" \
    "bad.ini:16: format: format = pagerduty needs routing_key" \
    "bad.ini:17: chat_id: is only used with format = telegram" \
    "bad.ini:23: template: line 1, column 20: unknown field \"stat\"" \
    "bad.ini:29: template: does not render as JSON"; do
	grep -qF "$want" "$T/bad.out" || fail "-t lacks \"$want\": $(cat "$T/bad.out")"
done
ok "-t reports each format error at its FILE:LINE"
