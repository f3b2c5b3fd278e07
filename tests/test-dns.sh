#!/bin/bash
# The dns check type against a real authoritative server: Debian's nsd,
# started here on a loopback port with a test zone (tests/data/dns/).
# Every record type, expected answers, expected RCODEs, both transports,
# -t errors, and what reaches SQLite and /metrics from the running agent.
. "$abs_top_srcdir/tests/lib.sh"

command -v nsd >/dev/null || fail "nsd is not installed (Debian package nsd)"

# start_nsd: nsd in the foreground on a free port; sets NSD_PORT.
start_nsd() {
	local try port
	cp "$abs_top_srcdir/tests/data/dns/wp.test.zone" \
	    "$abs_top_srcdir/tests/data/dns/rev.zone" "$T/"
	for try in 1 2 3 4 5 6 7 8; do
		port=$(( 20000 + (RANDOM * 7 + try * 131) % 40000 ))
		cat >"$T/nsd.conf" <<CONF
server:
	ip-address: 127.0.0.1@$port
	username: ""
	chroot: ""
	zonesdir: "$T"
	database: ""
	pidfile: "$T/nsd.pid"
	xfrdfile: "$T/xfrd.state"
	zonelistfile: "$T/zone.list"
	logfile: "$T/nsd.log"
	server-count: 1
	do-ip6: no
	# no response rate limiting: the checks ask at a steady rate on purpose
	rrl-ratelimit: 0
	verbosity: 1
remote-control:
	control-enable: no
zone:
	name: wp.test
	zonefile: wp.test.zone
zone:
	name: 0.0.127.in-addr.arpa
	zonefile: rev.zone
CONF
		: >"$T/nsd.log"
		nsd -d -c "$T/nsd.conf" &
		NSD_PID=$!
		PIDS+=($NSD_PID)
		if wait_until 10 grep -Eq 'nsd started|could not|can.t bind|failed' \
		    "$T/nsd.log" && grep -q 'nsd started' "$T/nsd.log"; then
			NSD_PORT=$port
			return 0
		fi
		kill "$NSD_PID" 2>/dev/null || true
		wait "$NSD_PID" 2>/dev/null || true
	done
	fail "nsd did not start"
}
start_nsd
S="server = 127.0.0.1:$NSD_PORT"

cat >"$T/dns.ini" <<INI
[agent]
listen = off

[monitor:a]
type = dns
name = www.wp.test
$S
expect = 127.0.0.10
expect = 127.0.0.11

[monitor:aaaa]
type = dns
name = www.wp.test
record = AAAA
$S
expect = 2001:db8:0:0::10

[monitor:cname]
type = dns
name = alias.wp.test
record = CNAME
$S
expect = WWW.wp.test.

[monitor:mx]
type = dns
name = wp.test
record = mx
$S
expect = mail.wp.test
expect = 20 backup.wp.test

[monitor:txt-tcp]
type = dns
name = long.wp.test
record = TXT
transport = tcp
$S
expect = part one part two

[monitor:ns]
type = dns
name = wp.test
record = NS
$S
expect = ns1.wp.test

[monitor:soa]
type = dns
name = wp.test
record = SOA
$S
expect = ns1.wp.test

[monitor:srv]
type = dns
name = _sip._tcp.wp.test
record = SRV
$S
expect = 10 60 5060 sip.wp.test

[monitor:caa]
type = dns
name = wp.test
record = CAA
$S
expect = issue ca.wp.test

[monitor:ptr]
type = dns
name = 127.0.0.10
record = PTR
$S
expect = www.wp.test

[monitor:nxdomain-expected]
type = dns
name = nothere.wp.test
$S
expected_rcode = NXDOMAIN

[monitor:nxdomain]
type = dns
name = nothere.wp.test
$S

[monitor:nodata]
type = dns
name = mail.wp.test
record = AAAA
$S

[monitor:wrong-answer]
type = dns
name = www.wp.test
$S
expect = 127.0.0.99

[monitor:refused]
type = dns
name = example.org
$S
INI
rc=0
"$WATCHPOST" --once -c "$T/dns.ini" -P "$PLUGINS" >"$T/out" 2>"$T/once.log" || rc=$?
cat "$T/out"
[ "$rc" -eq 2 ] || fail "some monitors DOWN: exit 2, got $rc"
for m in a aaaa cname mx txt-tcp ns soa srv caa ptr nxdomain-expected; do
	grep -Eq "^$m +dns +UP " "$T/out" || fail "$m should be UP"
done
grep -Eq '^nxdomain +dns +DOWN .*dns: nothere.wp.test A: 127.0.0.1:[0-9]+ answered NXDOMAIN, expected NOERROR' \
    "$T/out" || fail "NXDOMAIN without expected_rcode is DOWN, saying so"
grep -Eq '^nodata +dns +DOWN .*dns: mail.wp.test: no AAAA record in the answer' \
    "$T/out" || fail "NOERROR without an answer of the type is DOWN"
grep -Eq '^wrong-answer +dns +DOWN .*check: www.wp.test A: expected "127.0.0.99" among the answers; got: 127.0.0.1[01], 127.0.0.1[01]' \
    "$T/out" || fail "a missing expected value is DOWN, listing the answers"
grep -Eq '^refused +dns +DOWN .*answered REFUSED, expected NOERROR' \
    "$T/out" || fail "a zone the server does not serve: REFUSED"
ok "every record type, expect, expected_rcode and udp/tcp against nsd"

# A server that takes the TCP connection but never answers DNS: the host's
# deadline ends the check as a timeout, and nothing is left running.
start_httpd mute
cat >"$T/mute.ini" <<INI
[agent]
listen = off
[monitor:mute]
type = dns
name = www.wp.test
server = 127.0.0.1:$mute_PORT
transport = tcp
timeout = 1s
retries = 0
INI
rc=0
"$WATCHPOST" --once -c "$T/mute.ini" -P "$PLUGINS" >"$T/out" 2>"$T/once.log" || rc=$?
cat "$T/out"
[ "$rc" -eq 2 ] || fail "a mute server: exit 2, got $rc"
grep -Eq '^mute +dns +DOWN .*timeout' "$T/out" || fail "a mute server is a timeout"
ok "a server that never answers is a timeout at the deadline"

# -t: every judgement the types cannot make is FILE:LINE.
cat >"$T/bad.ini" <<'INI'
[agent]
listen = off
[monitor:badname]
type = dns
name = bad name.example
[monitor:badserver]
type = dns
name = www.wp.test
server = not-an-ip:53
[monitor:badexpect]
type = dns
name = www.wp.test
expect = ::1
[monitor:badrecord]
type = dns
name = www.wp.test
record = HINFO
[monitor:expect-nx]
type = dns
name = www.wp.test
expected_rcode = NXDOMAIN
expect = 127.0.0.1
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" 2>"$T/bad.err" || rc=$?
cat "$T/bad.err"
[ "$rc" -eq 1 ] || fail "-t: expected exit 1, got $rc"
grep -q 'bad.ini:[0-9]*: .*"bad name.example" is not a DNS name' "$T/bad.err" || fail "-t: name"
grep -q 'bad.ini:[0-9]*: .*"not-an-ip:53" is not IP\[:port\]' "$T/bad.err" || fail "-t: server"
grep -q 'bad.ini:[0-9]*: .*"::1" is not an IPv4 address' "$T/bad.err" || fail "-t: expect"
grep -q 'bad.ini:[0-9]*: .*HINFO' "$T/bad.err" || fail "-t: record"
grep -q 'bad.ini:[0-9]*: .*expected_rcode = NXDOMAIN has none' "$T/bad.err" || fail "-t: expect with NXDOMAIN"
ok "-t reports bad names, servers, expect values and record types as FILE:LINE"

# The running agent: rows, measurements and metrics.
DB="$T/dns.db"
cat >"$T/agent.ini" <<INI
[agent]
database = $DB
listen = 127.0.0.1:0
[monitor:www]
type = dns
name = www.wp.test
$S
interval = 1s
[monitor:gone]
type = dns
name = gone.wp.test
$S
interval = 1s
retries = 0
INI
start_agent "$T/agent.ini"
EXPECT=up wait_until 20 is state_of www || fail "www never UP"
EXPECT=down wait_until 20 is state_of gone || fail "gone never DOWN"
meas() { sql "$DB" "SELECT group_concat(x.name, ',') FROM (SELECT x.name FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'www' AND c.id = (SELECT max(c2.id) FROM checks c2 WHERE c2.monitor_id = m.id) ORDER BY x.name) x"; }
EXPECT=answers,query_time_seconds wait_until 10 is meas ||
    fail "measurements: got '$(meas)'"
n=$(sql "$DB" "SELECT x.value FROM measurements x JOIN checks c ON c.id = x.check_id JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'www' AND x.name = 'answers' ORDER BY c.id DESC LIMIT 1")
[ "${n%.*}" = 2 ] || fail "www.wp.test has 2 A records, answers = $n"
err=$(sql "$DB" "SELECT c.error FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'gone' ORDER BY c.id DESC LIMIT 1")
case $err in *"gone.wp.test A: 127.0.0.1:$NSD_PORT answered NXDOMAIN"*) ;;
*) fail "stored error: $err" ;; esac
curl -fsS "$API/metrics" >"$T/metrics"
grep -q '^watchpost_monitor_measurement{monitor="www",type="dns",name="answers"} 2' "$T/metrics" ||
    fail "answers on /metrics: $(grep measurement "$T/metrics")"
grep -q '^watchpost_monitor_measurement{monitor="www",type="dns",name="query_time_seconds"} ' "$T/metrics" ||
    fail "query_time_seconds on /metrics"
stop_agent
ok "the agent stores dns rows with answers and query_time_seconds, and exports them"
