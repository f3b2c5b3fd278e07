#!/bin/bash
# /metrics from a running daemon: the output is valid Prometheus text
# exposition format (tests/promlint.awk, itself checked first on known-bad
# input; then promtool check metrics from Debian's prometheus package) and
# every family the operator relies on is there with sane values:
# per monitor, operation monitor, scheduler, store and alert outbox.
. "$abs_top_srcdir/tests/lib.sh"

LINT="$abs_top_srcdir/tests/promlint.awk"

# ---- the validator rejects what it should ----
good='# HELP a_total A.
# TYPE a_total counter
a_total{x="q\"\\\n"} 1
# HELP h_seconds H.
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1"} 1
h_seconds_bucket{le="+Inf"} 2
h_seconds_sum 0.3
h_seconds_count 2'
printf '%s\n' "$good" | awk -f "$LINT" || fail "promlint rejects valid input"
reject() { # $1: what is wrong, $2: input
	if printf '%s\n' "$2" | awk -f "$LINT" 2>/dev/null; then
		fail "promlint accepts $1"
	fi
}
reject "a sample without TYPE" 'x 1'
reject "a bad value" "$(printf '# HELP g G.\n# TYPE g gauge\ng one')"
reject "a bad escape" "$(printf '# HELP g G.\n# TYPE g gauge\ng{a="\\x"} 1')"
reject "an unterminated label" "$(printf '# HELP g G.\n# TYPE g gauge\ng{a="b} 1')"
reject "a repeated series" "$(printf '# HELP g G.\n# TYPE g gauge\ng 1\ng 2')"
reject "a counter without _total" "$(printf '# HELP c C.\n# TYPE c counter\nc 1')"
reject "a unit in ms" "$(printf '# HELP l_ms L.\n# TYPE l_ms gauge\nl_ms 1')"
reject "split families" "$(printf '# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\na{x="1"} 1')"
reject "non-cumulative buckets" "$(printf '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1')"
reject "a histogram without +Inf" "$(printf '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_sum 1\nh_count 2')"
reject "_count unequal to +Inf" "$(printf '# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3')"
reject "TYPE after samples" "$(printf '# HELP g G.\ng 1\n# TYPE g gauge')"
ok "promlint accepts valid input and rejects 12 kinds of invalid input"

# ---- a daemon with every kind of monitor and an alert ----
start_httpd web
start_httpd tls --tls "$abs_top_srcdir/tests/data/test-cert.pem" \
    "$abs_top_srcdir/tests/data/test-key.pem"
echo 500 >"$T/hook-status"
start_httpd hook --record "$T/hook.jsonl" --hook-status-file "$T/hook-status"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 500ms

[monitor:secure.site]
type = http
url = https://127.0.0.1:$tls_PORT/status/200
verify_tls = false
interval = 500ms
; a handshake per check, so the TLS phase is never 0 (a reused connection
; reports 0)
keepalive = false

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

; Each check takes longer than the interval: its slots are skipped.
[monitor:slow]
type = http
url = http://127.0.0.1:$web_PORT/slow?ms=1200
interval = 300ms
timeout = 5s
alerts = none

[alert:hook]
type = webhook
url = http://127.0.0.1:$hook_PORT/hook
INI
export WATCHPOST_ALERT_BACKOFF_MAX_MS=200
start_agent "$T/agent.ini"

scrape() { curl -fsS "$API/metrics" >"$T/metrics.txt"; }
# value NAME{LABELS}: the sample's value, or nothing.
value() {
	awk -v k="$1" 'index($0, k " ") == 1 { print $2 }' "$T/metrics.txt"
}
# at_least NAME{LABELS} N: the sample exists and is >= N.
at_least() {
	local v
	v=$(value "$1")
	[ -n "$v" ] && awk -v v="$v" -v n="$2" 'BEGIN { exit !(v + 0 >= n + 0) }'
}
scraped_at_least() { scrape && at_least "$@"; }

# The DOWN alert fails against the 500 receiver, then is delivered.
wait_until 20 scraped_at_least watchpost_alert_attempts_failed_total 1 ||
    fail "no failed delivery attempt counted"
echo 200 >"$T/hook-status"
wait_until 20 scraped_at_least watchpost_alerts_delivered_total 1 ||
    fail "no delivery counted"
wait_until 20 scraped_at_least \
    'watchpost_monitor_skipped_total{monitor="slow",type="http"}' 1 ||
    fail "slow monitor: no skipped slot counted"
wait_until 20 scraped_at_least \
    'watchpost_monitor_checks_total{monitor="slow",type="http",result="up"}' 1 ||
    fail "slow monitor: no check counted"
wait_until 20 scraped_at_least 'watchpost_monitor_checks_total{monitor="secure.site",type="http",result="up"}' 1 ||
    fail "https monitor: no check counted"
wait_until 20 scraped_at_least 'watchpost_monitor_checks_total{monitor="loopback",type="ping",result="up"}' 1 ||
    fail "ping monitor: no check counted"
wait_until 20 scraped_at_least 'watchpost_store_batch_seconds_count' 1 ||
    fail "no store write counted"

# The final scrape: headers, then the format, then each family's values.
curl -fsS -D "$T/headers" -o "$T/metrics.txt" "$API/metrics" || fail "/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/headers" ||
    fail "content type: $(cat "$T/headers")"
awk -f "$LINT" "$T/metrics.txt" || fail "/metrics is not valid exposition format"
ok "/metrics is valid exposition format ($(grep -vc '^#' "$T/metrics.txt") samples)"
# Prometheus' own linter on the live output: any error or lint message fails.
promtool check metrics <"$T/metrics.txt" >"$T/promtool.txt" 2>&1 ||
    fail "promtool check metrics: $(cat "$T/promtool.txt")"
[ -s "$T/promtool.txt" ] && fail "promtool check metrics: $(cat "$T/promtool.txt")"
ok "promtool check metrics accepts /metrics"

expect() { # expect NAME{LABELS} OP N
	local v
	v=$(value "$1")
	[ -n "$v" ] || fail "missing $1"
	awk -v v="$v" -v n="$3" -v op="$2" 'BEGIN {
		v += 0; n += 0
		if (op == "==") r = (v == n)
		else if (op == ">=") r = (v >= n)
		else if (op == ">") r = (v > n)
		else r = (v < n)
		exit !r }' || fail "$1 = $v, expected $2 $3"
}
m='{monitor="web",type="http"}'
expect "watchpost_monitor_up$m" == 1
expect 'watchpost_monitor_up{monitor="closed-port",type="tcp"}' == 0
expect 'watchpost_monitor_up{monitor="loopback",type="ping"}' == 1
expect "watchpost_monitor_latency_seconds$m" ">" 0
expect "watchpost_monitor_latency_seconds$m" "<" 5
expect 'watchpost_monitor_checks_total{monitor="web",type="http",result="up"}' ">=" 1
expect 'watchpost_monitor_checks_total{monitor="web",type="http",result="down"}' == 0
expect 'watchpost_monitor_checks_total{monitor="closed-port",type="tcp",result="down"}' ">=" 1
for p in dns connect first_byte; do
	expect "watchpost_monitor_phase_seconds{monitor=\"web\",type=\"http\",phase=\"$p\"}" ">=" 0
done
s='{monitor="secure.site",type="http"'
expect "watchpost_monitor_phase_seconds$s,phase=\"tls\"}" ">" 0
now=$(date +%s)
expect "watchpost_monitor_cert_expiry_timestamp_seconds$s}" ">" "$now"
grep -q '^watchpost_monitor_cert_expiry_timestamp_seconds{monitor="web"' \
    "$T/metrics.txt" && fail "plain http has no certificate expiry"
expect 'watchpost_monitor_measurement{monitor="loopback",type="ping",name="rtt_seconds"}' ">=" 0
expect 'watchpost_monitor_measurement{monitor="loopback",type="ping",name="loss_ratio"}' == 0
ok "per monitor: up, latency, checks by result, phases, certificate expiry, measurements"

expect 'watchpost_operations_in_flight{category="check"}' ">=" 0
expect 'watchpost_operations_total{category="check",outcome="succeeded"}' ">=" 3
expect 'watchpost_operations_total{category="check",outcome="failed"}' ">=" 1
expect 'watchpost_operations_total{category="alert",outcome="failed"}' ">=" 1
expect 'watchpost_operations_total{category="alert",outcome="succeeded"}' ">=" 1
expect 'watchpost_operation_duration_seconds_count{category="check"}' ">=" 3
expect 'watchpost_operation_duration_seconds_bucket{category="check",le="+Inf"}' ">=" 3
ok "operation monitor: in flight, totals by category and outcome, durations"

expect 'watchpost_schedule_lateness_seconds_count' ">=" 3
expect 'watchpost_schedule_lateness_seconds_bucket{le="+Inf"}' ">=" 3
expect 'watchpost_checks_skipped_total' ">=" 1
expect 'watchpost_monitors' == 5
ok "scheduler: lateness histogram, skipped slots, monitor count"

expect watchpost_store_queue_depth ">=" 0
expect watchpost_store_written_total ">=" 1
expect watchpost_store_failing == 0
expect watchpost_store_batch_seconds_count ">=" 1
expect watchpost_alerts_pending ">=" 0
expect watchpost_alerts_delivered_total ">=" 1
expect watchpost_alert_attempts_failed_total ">=" 1
ok "store (queue, writes, write latency) and outbox (pending, delivered, failed)"

# Monitor and type labels on every per-monitor series.
if grep '^watchpost_monitor_' "$T/metrics.txt" |
    grep -v '{monitor="[^"]*",type="[^"]*"'; then
	fail "per-monitor series without monitor and type labels"
fi
stop_agent
ok "every per-monitor series carries monitor and type labels"

# Every family the agent exposes is documented in watchpost(8).
for f in $(sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$T/metrics.txt"); do
	grep -q "^\.BR* $f\( [,.]\)*$" "$abs_top_srcdir/man/watchpost.8" ||
	    fail "metric $f is not in watchpost(8)"
done
ok "every metric family is documented in watchpost(8)"
