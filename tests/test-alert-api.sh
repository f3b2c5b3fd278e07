#!/bin/bash
# The alert surfaces against a real receiver (testhttpd /hook, through the
# webhook plugin): watchpost --test-alert NAME (exit 0 accepted, 1
# refused or unknown, no database written), POST /api/alerts/NAME/test
# (token, 405, 404, ok true/false), GET /api/alerts while the receiver is
# down (pending with attempts, next_attempt, last_error) and after
# (delivered), the per-section metrics, and no secret of the section (the
# URL's token) in any of them or in the log.
. "$abs_top_srcdir/tests/lib.sh"

SECRET=s3cr3t-hook-token-4711
start_httpd hook --record "$T/hook.jsonl" --hook-status-file "$T/hook.status"
echo 200 >"$T/hook.status"
DB="$T/agent.db"
export WATCHPOST_ALERT_BACKOFF_MAX_MS=300
printf 'api-token-0123456789\n' >"$T/token"
chmod 600 "$T/token"
TOKEN=api-token-0123456789

cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0
api_token_file = token

[monitor:down]
type = tcp
host = 127.0.0.1
port = 1
interval = 300ms
retries = 0
alerts = hook

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook?token=$SECRET
timeout = 2s

[alert:other]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook?tag=other&token=$SECRET
INI

hook_count() { wc -l <"$T/hook.jsonl" 2>/dev/null || echo 0; }

# --test-alert: accepted.
rc=0
"$WATCHPOST" --test-alert hook -c "$T/agent.ini" -P "$PLUGINS" >"$T/t1.out" 2>"$T/t1.err" || rc=$?
[ "$rc" = 0 ] || fail "--test-alert exited $rc: $(cat "$T/t1.out" "$T/t1.err")"
grep -qx 'delivered (status 200)' "$T/t1.out" || fail "answer: $(cat "$T/t1.out")"
[ "$(hook_count)" = 1 ] || fail "the receiver did not get one request"
grep -q '"monitor": *"watchpost-test"' "$T/hook.jsonl" || fail "not the test monitor"
grep -q '"state": *"down"' "$T/hook.jsonl" || fail "not state down"
[ ! -e "$DB" ] || fail "--test-alert created the database"
ok "--test-alert: receiver accepted, exit 0, no database written"

# --test-alert: refused.
echo 503 >"$T/hook.status"
rc=0
"$WATCHPOST" --test-alert hook -c "$T/agent.ini" -P "$PLUGINS" >"$T/t2.out" 2>"$T/t2.err" || rc=$?
[ "$rc" = 1 ] || fail "--test-alert against a 503 exited $rc"
grep -qx 'failed: status (status 503): HTTP 503' "$T/t2.out" || fail "answer: $(cat "$T/t2.out")"
rc=0
"$WATCHPOST" --test-alert nosuch -c "$T/agent.ini" -P "$PLUGINS" >"$T/t3.out" 2>"$T/t3.err" || rc=$?
[ "$rc" = 1 ] || fail "--test-alert nosuch exited $rc"
grep -q 'there is no \[alert:nosuch\] section' "$T/t3.err" || fail "$(cat "$T/t3.err")"
cat "$T"/t?.out "$T"/t?.err | grep -q "$SECRET" && fail "secret in --test-alert output"
ok "--test-alert: refused gives exit 1 with the answer; unknown section exit 1"

# The agent, with the receiver refusing: the monitor's DOWN alert waits.
start_agent "$T/agent.ini"
EXPECT=down wait_until 15 is state_of down || fail "monitor did not go down"
retried() {
	curl -fsS -H "Authorization: Bearer $TOKEN" "$API/api/alerts" >"$T/a.json" &&
	    jq -e '.pending | length == 1 and (.[0] | .monitor == "down" and
	        .alert == "hook" and .state == "down" and .attempts >= 2 and
	        .last_error == "HTTP 503" and .next_attempt != null and
	        .created > 0 and (.id | type) == "number")' "$T/a.json" >/dev/null
}
wait_until 20 retried || fail "/api/alerts pending wrong: $(cat "$T/a.json")"
[ "$(jq '.delivered | length' "$T/a.json")" = 0 ] || fail "delivered not empty"
curl -sS -o /dev/null -w '%{http_code}' "$API/api/alerts" | grep -qx 401 ||
    fail "/api/alerts without the token is not 401"
ok "/api/alerts: pending with attempts, next_attempt, last_error while the receiver is down"

# POST /api/alerts/NAME/test while the receiver refuses, then accepts.
post() { curl -sS -o "$T/p.json" -w '%{http_code}' -X "${2:-POST}" \
    -H "Authorization: Bearer $TOKEN" "$API/api/alerts/$1/test"; }
[ "$(post hook)" = 200 ] || fail "POST test: $(cat "$T/p.json")"
jq -e '.ok == false and .alert == "hook" and (.answer | test("HTTP 503"))' "$T/p.json" >/dev/null ||
    fail "POST test against 503: $(cat "$T/p.json")"
echo 200 >"$T/hook.status"
before=$(grep -c watchpost-test "$T/hook.jsonl")
[ "$(post other)" = 200 ] || fail "POST test other: $(cat "$T/p.json")"
jq -e '.ok == true and .alert == "other" and .answer == "delivered (status 200)"' "$T/p.json" >/dev/null ||
    fail "POST test accepted: $(cat "$T/p.json")"
[ "$(grep -c watchpost-test "$T/hook.jsonl")" = $((before + 1)) ] ||
    fail "the receiver did not get the API's test alert"
[ "$(post nosuch)" = 404 ] || fail "POST test of an unknown section is not 404"
[ "$(post hook GET)" = 405 ] || fail "GET .../test is not 405"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/api/alerts/hook/test")" = 401 ] ||
    fail "POST test without the token is not 401"
ok "POST /api/alerts/NAME/test: 200 with ok and the answer, 404, 405, 401"

# The receiver accepts: the pending alert is delivered and listed.
delivered() {
	curl -fsS -H "Authorization: Bearer $TOKEN" "$API/api/alerts" >"$T/a.json" &&
	    jq -e '(.pending | length) == 0 and (.delivered | length) == 1 and
	        (.delivered[0] | .monitor == "down" and .alert == "hook" and
	        .attempts >= 3 and .delivered >= .created)' "$T/a.json" >/dev/null
}
wait_until 20 delivered || fail "/api/alerts delivered wrong: $(cat "$T/a.json")"
# The outbox row goes in the writer's next batch, after the answer is known.
EXPECT=0 wait_until 10 is pending_of down || fail "outbox not empty"
curl -fsS -H "Authorization: Bearer $TOKEN" "$API/metrics" >"$T/m.txt"
grep -qx 'watchpost_alert_deliveries_total{alert="hook",outcome="delivered"} 1' "$T/m.txt" ||
    fail "delivered counter: $(grep deliveries_total "$T/m.txt")"
failed=$(sed -n 's/^watchpost_alert_deliveries_total{alert="hook",outcome="failed"} //p' "$T/m.txt")
[ "$failed" -ge 2 ] || fail "failed counter $failed"
grep -qx 'watchpost_alert_deliveries_total{alert="other",outcome="delivered"} 0' "$T/m.txt" ||
    fail "a test alert counted as a delivery"
grep -qx 'watchpost_alert_pending{alert="hook"} 0' "$T/m.txt" || fail "pending gauge"
ok "delivered after the outage: /api/alerts, outbox and metrics agree"

# No secret anywhere.
curl -fsS -H "Authorization: Bearer $TOKEN" "$API/api/monitors" >"$T/mon.json"
stop_agent
for f in "$T/a.json" "$T/p.json" "$T/m.txt" "$T/mon.json" "$T/agent.log"; do
	! grep -q "$SECRET" "$f" || fail "the webhook token leaked into $f"
done
ok "no secret in /api/alerts, the test answers, metrics or the log"

# Without api_token_file the test route, a mutation, is refused (403);
# reads still work.
grep -v '^api_token_file' "$T/agent.ini" >"$T/open.ini"
start_agent "$T/open.ini"
[ "$(curl -sS -o "$T/p.json" -w '%{http_code}' -X POST "$API/api/alerts/hook/test")" = 403 ] ||
    fail "POST test without a token file is not 403"
grep -q 'api_token_file' "$T/p.json" || fail "403 does not say how to enable it: $(cat "$T/p.json")"
curl -fsS "$API/api/alerts" | jq -e '.pending | type == "array"' >/dev/null ||
    fail "GET /api/alerts without a token file"
stop_agent
ok "without a token file: POST test 403 saying how to enable it; GET works"
