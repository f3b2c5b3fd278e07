#!/bin/bash
# End to end: a ping monitor with count = 3 in the real daemon: every
# echo to 127.0.0.1 answered, its loss, rtt_min/avg/max and jitter stored in
# SQLite and exported on /metrics; and -t refusing a count that does not
# fit in the timeout and a loss ratio that is not one, as FILE:LINE.
. "$abs_top_srcdir/tests/lib.sh"

DB="$T/agent.db"
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = 127.0.0.1:0

[monitor:burst]
type = ping
host = 127.0.0.1
count = 3
packet_interval = 200ms
loss_warn = 34%
interval = 1s
timeout = 3s
alerts = none
INI
"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 ||
    fail "-t refused a good count: $(cat "$T/t.out")"
start_agent "$T/agent.ini"

# Results land in SQLite, with every measurement.
meas() { sql "$DB" "SELECT x.name || '=' || x.value FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'burst' AND c.id = (SELECT max(c2.id) FROM checks c2 WHERE c2.monitor_id = m.id AND c2.ok = 1) ORDER BY x.name"; }
up_rows() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'burst' AND c.ok = 1" 2>/dev/null; }
wait_until 20 at_least 2 up_rows || fail "burst: no UP rows stored"
EXPECT="jitter_seconds loss_ratio rtt_avg_seconds rtt_max_seconds rtt_min_seconds rtt_seconds "
[ "$(meas | sed 's/=.*//' | tr '\n' ' ')" = "$EXPECT" ] ||
    fail "count = 3: measurements stored: $(meas | tr '\n' ' ')"
meas | grep -qx 'loss_ratio=0.0' || fail "every echo to 127.0.0.1 is answered: $(meas)"
v() { meas | sed -n "s/^$1=//p"; }
awk -v a="$(v rtt_min_seconds)" -v b="$(v rtt_avg_seconds)" \
    -v c="$(v rtt_max_seconds)" -v r="$(v rtt_seconds)" \
    'BEGIN { exit !(a > 0 && a <= b && b <= c && r == b) }' ||
    fail "rtt_min <= rtt_avg <= rtt_max, rtt = rtt_avg: $(meas | tr '\n' ' ')"
[ "$(state_of burst)" = up ] || fail "burst: state $(state_of burst), not up"
ok "count = 3: loss, rtt_min/avg/max, rtt and jitter stored in SQLite; up"

# And on /metrics.
curl -fsS "$API/metrics" >"$T/metrics.txt" || fail "/metrics"
for n in loss_ratio rtt_min_seconds rtt_avg_seconds rtt_max_seconds jitter_seconds; do
	grep -q "^watchpost_monitor_measurement{monitor=\"burst\",type=\"ping\",name=\"$n\"} " \
	    "$T/metrics.txt" || fail "/metrics lacks $n"
done
grep -Eq '^watchpost_monitor_measurement\{monitor="burst",type="ping",name="loss_ratio"\} 0(\.0*)?$' \
    "$T/metrics.txt" || fail "/metrics: loss_ratio not 0: $(grep loss_ratio "$T/metrics.txt")"
ok "count = 3: the measurements on /metrics"
stop_agent

# -t: FILE:LINE errors.
cat >"$T/bad.ini" <<INI
[agent]
database = agent.db

[monitor:long]
type = ping
host = 127.0.0.1
count = 20
timeout = 2s

[monitor:ratio]
type = ping
host = 127.0.0.1
loss_max = lots
INI
if "$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1; then
	fail "-t accepted 20 echoes 200ms apart in a 2s timeout"
fi
grep -q "bad.ini:7: count: 20 echo requests 0.2s apart take 4s, which does not fit in the monitor's timeout (2s)" "$T/t.out" ||
    fail "-t: count error: $(cat "$T/t.out")"
grep -q 'bad.ini:13: loss_max: "lots" is not a loss ratio' "$T/t.out" ||
    fail "-t: loss_max error: $(cat "$T/t.out")"
ok "-t: count x packet_interval beyond the timeout and a bad loss_max, as FILE:LINE"
