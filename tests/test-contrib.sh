#!/bin/bash
# contrib/: the Grafana dashboard and the Prometheus rules hold up against
# a live agent.  promtool (Debian's prometheus package) checks and unit-tests
# the rules (contrib/prometheus/watchpost-rules.test.yml covers every alert
# firing and not firing) and parses every dashboard expression;
# tests/contrib-check.py proves that every metric and label those
# expressions name is exported by a real agent running http (plain and
# TLS), tcp and ping monitors and a webhook alert.  Each checker is first
# shown to reject a broken input.  Skips (77) only without promtool.
. "$abs_top_srcdir/tests/lib.sh"

command -v promtool >/dev/null 2>&1 || {
	echo "SKIP: promtool is missing: install the Debian package prometheus"
	exit 77
}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import yaml' 2>/dev/null ||
    fail "PyYAML is missing: install the Debian package python3-yaml"
CHECK="$abs_top_srcdir/tests/contrib-check.py"
DASH="$abs_top_srcdir/contrib/grafana/watchpost.json"
RULES="$abs_top_srcdir/contrib/prometheus/watchpost-rules.yml"
RTEST="$abs_top_srcdir/contrib/prometheus/watchpost-rules.test.yml"

# ---- the rules: syntax, then their unit tests ----
promtool check rules "$RULES" >"$T/check.txt" 2>&1 ||
    fail "promtool check rules: $(cat "$T/check.txt")"
alerts=$(grep -c '^ *- alert:' "$RULES")
[ "$alerts" -ge 10 ] || fail "only $alerts alerts in $RULES"
# Every alert has both annotations and a unit test.
for a in $(sed -n 's/^ *- alert: *//p' "$RULES"); do
	awk -v a="$a" '$0 ~ "- alert: " a "$" { on = 1; next }
	    on && /^ *- (alert|record):/ { exit }
	    on && /summary:/ { s = 1 } on && /description:/ { d = 1 }
	    END { exit !(s && d) }' "$RULES" ||
	    fail "alert $a lacks a summary or description annotation"
	n=$(grep -c "alertname: $a\$" "$RTEST")
	[ "$n" -ge 2 ] || fail "alert $a is tested $n times, not firing and not"
done
(cd "$T" && promtool test rules "$RTEST") >"$T/test.txt" 2>&1 ||
    fail "promtool test rules: $(cat "$T/test.txt")"
# The unit tests can fail: shorten one "for" and they must notice.
mkdir "$T/broken"
sed '0,/for: 5m/s//for: 1m/' "$RULES" >"$T/broken/watchpost-rules.yml"
cp "$RTEST" "$T/broken/"
if promtool test rules "$T/broken/watchpost-rules.test.yml" >/dev/null 2>&1; then
	fail "promtool test rules accepts a rule with a changed duration"
fi
ok "rules: promtool check rules and test rules pass ($alerts alerts, each with annotations, tested firing and not)"

# ---- a live agent exporting every family the contrib files read ----
start_httpd web
start_httpd tls --tls "$abs_top_srcdir/tests/data/test-cert.pem" \
    "$abs_top_srcdir/tests/data/test-key.pem"
start_httpd hook --record "$T/hook.jsonl"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 500ms

[monitor:secure]
type = http
url = https://127.0.0.1:$tls_PORT/status/200
verify_tls = false
interval = 500ms

[monitor:closed-port]
type = tcp
host = 127.0.0.1
port = 1
retries = 0
interval = 500ms

[monitor:loopback]
type = ping
host = 127.0.0.1
interval = 500ms
alerts = none

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
INI
start_agent "$T/agent.ini"

# checked: scrape, then the names check (its problems in $T/names.txt).
checked() {
	curl -fsS "$API/metrics" >"$T/metrics.txt" &&
	    "$PY" "$CHECK" "$DASH" "$RULES" "$T/metrics.txt" \
	    "$T/dashboard-rules.yml" >"$T/names-ok.txt" 2>"$T/names.txt"
}
# The first checks, the certificate, the DOWN alert and a store write take
# a moment to appear.
wait_until 30 checked ||
    fail "names the agent does not export: $(cat "$T/names.txt")"
grep -q '^watchpost_monitor_cert_expiry_timestamp_seconds{monitor="secure"' \
    "$T/metrics.txt" || fail "no certificate expiry exported"
grep -q '^watchpost_alert_deliveries_total{alert="hook"' "$T/metrics.txt" ||
    fail "no per-section deliveries exported"
ok "$(cat "$T/names-ok.txt")"

# ---- the dashboard: structure, then every expression through promtool ----
jq -e '.schemaVersion >= 36 and .uid == "watchpost-agent" and
    ([.templating.list[] | select(.name == "datasource" and
        .type == "datasource" and .query == "prometheus")] | length == 1) and
    ([.templating.list[] | select(.name == "instance" and .type == "query")]
        | length == 1) and
    ([.panels[].id] | length == (unique | length)) and
    all(.panels[] | select(.type != "row");
        .datasource.uid == "${datasource}" and (.targets | length > 0) and
        all(.targets[]; .datasource.uid == "${datasource}" and
            (.expr | length > 0)) and .gridPos.w > 0 and .gridPos.h > 0)' \
    "$DASH" >/dev/null || fail "dashboard structure (schemaVersion, variables, datasource, ids)"
for t in "state per monitor" latency phases uptime "in flight" "timed out" \
    "store queue" "write latency" "outbox pending" "deliveries by result" \
    "checks skipped" certificate; do
	jq -e --arg t "$t" 'any(.panels[]; .title | ascii_downcase | contains($t))' \
	    "$DASH" >/dev/null || fail "dashboard has no panel about $t"
done
promtool check rules "$T/dashboard-rules.yml" >"$T/dcheck.txt" 2>&1 ||
    fail "promtool rejects a dashboard expression: $(cat "$T/dcheck.txt")"
n=$(grep -c 'record: dashboard:' "$T/dashboard-rules.yml")
[ "$n" -eq "$(jq '[.panels[].targets[]?] + [.templating.list[] |
    select(.type == "query")] | length' "$DASH")" ] ||
    fail "generated $n dashboard rules, not one per target and variable"
ok "dashboard: structure, and all its $n expressions (targets, variables) parse in promtool"

# ---- and the checkers reject what they should ----
broken() { # broken JQ-EDIT: the dashboard changed by JQ-EDIT
	jq "$1" "$DASH" >"$T/broken.json"
}
broken '.panels[1].targets[0].expr = "rate(watchpost_no_such_total[5m])"'
"$PY" "$CHECK" "$T/broken.json" "$RULES" "$T/metrics.txt" "$T/b.yml" \
    >/dev/null 2>"$T/b.txt" && fail "contrib-check accepts an unexported metric"
grep -q 'watchpost_no_such_total is not exported' "$T/b.txt" ||
    fail "contrib-check: $(cat "$T/b.txt")"
broken '.panels[1].targets[0].expr = "sum by (monitor) (watchpost_operations_total{result=\"up\"})"'
"$PY" "$CHECK" "$T/broken.json" "$RULES" "$T/metrics.txt" "$T/b.yml" \
    >/dev/null 2>"$T/b.txt" && fail "contrib-check accepts labels the metric lacks"
grep -q 'label monitor is on none' "$T/b.txt" && grep -q 'label result is on none' "$T/b.txt" ||
    fail "contrib-check: $(cat "$T/b.txt")"
broken '.panels[1].targets[0].expr = "sum by (instance) (rate(watchpost_store_written_total[$__rate_interval])"'
"$PY" "$CHECK" "$T/broken.json" "$RULES" "$T/metrics.txt" "$T/b.yml" \
    >/dev/null 2>&1 || fail "contrib-check rejects a well-named expression"
promtool check rules "$T/b.yml" >/dev/null 2>&1 &&
    fail "promtool accepts an unbalanced dashboard expression"
ok "the checks reject an unexported metric, a foreign label and a syntax error"
stop_agent
