#!/bin/bash
# The exec alert type with the real daemon: a script records its stdin
# (the webhook's JSON body), its arguments and its WATCHPOST_* environment;
# a monitor going DOWN and UP reaches it exactly once each, in order; a
# script that fails is retried until it succeeds, its stderr's first line
# being the error; a script that hangs is killed at the deadline and
# retried; -t refuses a relative command.
. "$abs_top_srcdir/tests/lib.sh"

# ---- -t ----------------------------------------------------------------
cat >"$T/bad.ini" <<INI
[agent]
listen = off

[alert:rel]
type = exec
command = page-oncall
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "-t: exit 1, got $rc"
grep -q 'bad.ini:6: command: "page-oncall" is not an absolute path' \
    "$T/t.out" || fail "relative alert command not refused: $(cat "$T/t.out")"
ok "-t refuses a relative alert command at its line"

# ---- scripts ---------------------------------------------------------
cat >"$T/record" <<SH
#!/bin/sh
body=\$(cat)
printf '%s\n' "\$body" >>"$T/rec.jsonl"
printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "\$*" "\$WATCHPOST_ALERT" \
    "\$WATCHPOST_MONITOR" "\$WATCHPOST_TYPE" "\$WATCHPOST_STATE" \
    "\$WATCHPOST_PREVIOUS_STATE" "\$WATCHPOST_ID" "\$WATCHPOST_REASON" \
    "\$PATH" >>"$T/rec.env"
env | grep -v '^PWD=' | sed 's/=.*//' | sort | tr '\n' ' ' >>"$T/rec.names"
echo >>"$T/rec.names"
SH
# Fails its first two attempts, then takes the alert.
cat >"$T/flaky" <<SH
#!/bin/sh
n=\$(cat "$T/flaky.count" 2>/dev/null || echo 0)
n=\$((n + 1))
echo \$n >"$T/flaky.count"
if [ \$n -le 2 ]; then
	echo "receiver down, try \$n" >&2
	echo "second line" >&2
	exit 1
fi
cat >>"$T/flaky.jsonl"
echo >>"$T/flaky.jsonl"
SH
# Hangs (with a grandchild) on its first attempt, then takes the alert.
cat >"$T/hang" <<SH
#!/bin/sh
if [ ! -e "$T/hang.once" ]; then
	: >"$T/hang.once"
	sleep 600 &
	echo \$! >"$T/hang.gpid"
	wait
fi
cat >>"$T/hang.jsonl"
echo >>"$T/hang.jsonl"
SH
chmod 755 "$T/record" "$T/flaky" "$T/hang"

start_httpd flap --hook-status-file "$T/flap.status"
echo 200 >"$T/flap.status"
DB="$T/agent.db"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:site]
type = http
url = http://127.0.0.1:$flap_PORT/hook
interval = 200ms
timeout = 2s
retries = 0

[alert:rec]
type = exec
command = $T/record
arg = --tag
arg = two words

[alert:flaky]
type = exec
command = $T/flaky

[alert:hang]
type = exec
command = $T/hang
timeout = 500ms
INI
# Retries at 1 s, 2 s, ...: bounded so the test stays short.
WATCHPOST_ALERT_BACKOFF_MAX_MS=1000 start_agent "$T/agent.ini"
EXPECT=up
wait_until 20 is state_of site || fail "site never UP"
echo 500 >"$T/flap.status"
EXPECT=down
wait_until 20 is state_of site || fail "site never DOWN"
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
wait_until 20 at_least 1 lines "$T/rec.jsonl" || fail "DOWN alert never ran the script"
echo 200 >"$T/flap.status"
EXPECT=up
wait_until 20 is state_of site || fail "site never UP again"
wait_until 20 at_least 2 lines "$T/rec.jsonl" || fail "UP alert never ran the script"
wait_until 30 at_least 2 lines "$T/flaky.jsonl" || fail "flaky: not delivered after retries"
wait_until 30 at_least 2 lines "$T/hang.jsonl" || fail "hang: not delivered after the kill"
EXPECT=0
wait_until 20 is pending_of site || fail "outbox not drained"
stop_agent

cat "$T/rec.env"
[ "$(lines "$T/rec.jsonl")" -eq 2 ] || fail "rec: DOWN and UP exactly once each, saw $(lines "$T/rec.jsonl")"
jq -e -s 'length == 2 and .[0].monitor == "site" and .[0].state == "down"
    and .[0].previous_state == "up" and .[1].state == "up"
    and .[1].previous_state == "down" and .[0].type == "http"
    and (.[0].id | type) == "number" and .[0].id < .[1].id' \
    "$T/rec.jsonl" >/dev/null || fail "stdin is not the webhook body: $(cat "$T/rec.jsonl")"
id0=$(jq -s '.[0].id' "$T/rec.jsonl")
head -1 "$T/rec.env" | grep -qx "\-\-tag two words|rec|site|http|down|up|$id0|status|/usr/bin:/bin" ||
    fail "arguments or WATCHPOST_* variables wrong: $(head -1 "$T/rec.env")"
sed -n 2p "$T/rec.env" | grep -q "|rec|site|http|up|down|[0-9]*||/usr/bin:/bin$" ||
    fail "UP alert's variables wrong: $(sed -n 2p "$T/rec.env")"
# The clean environment: exactly the documented names.
want="PATH WATCHPOST_ALERT WATCHPOST_ATTEMPT WATCHPOST_ERROR WATCHPOST_ID WATCHPOST_MONITOR WATCHPOST_PREVIOUS_STATE WATCHPOST_REASON WATCHPOST_STATE WATCHPOST_TIMESTAMP WATCHPOST_TYPE "
[ "$(head -1 "$T/rec.names")" = "$want" ] ||
    fail "environment names: $(head -1 "$T/rec.names")"
ok "a recording script gets the JSON body, its args and WATCHPOST_*: DOWN and UP once each"

[ "$(lines "$T/flaky.jsonl")" -eq 2 ] || fail "flaky: each alert delivered once"
[ "$(cat "$T/flaky.count")" -eq 4 ] || fail "flaky: 2 failures + 2 deliveries, ran $(cat "$T/flaky.count") times"
grep -q 'alert flaky: delivery for monitor site failed (.*exit 1: receiver down, try 1' \
    "$T/agent.log" || fail "stderr's first line is not the error"
if grep -q "second line" "$T/agent.log"; then fail "more than stderr's first line logged"; fi
jq -e -s '.[0].state == "down" and .[1].state == "up"' "$T/flaky.jsonl" \
    >/dev/null || fail "flaky: order lost over retries"
ok "a failing script is retried with back-off until it exits 0, in order"

[ "$(lines "$T/hang.jsonl")" -eq 2 ] || fail "hang: each alert delivered once"
grep -q 'alert hang: delivery for monitor site failed' "$T/agent.log" ||
    fail "hang: the killed attempt is not a failure"
gpid=$(cat "$T/hang.gpid")
st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$gpid/stat" 2>/dev/null || true)
[ -z "$st" ] || [ "$st" = Z ] || fail "the hung script's grandchild $gpid survived (state $st)"
ok "a hanging script is killed at the deadline with its grandchild, then retried"
