#!/bin/bash
# tcp's conversation keys against real servers on loopback: send and
# expect against an SMTP server (Debian's aiosmtpd) and tests/testhttpd,
# tls = true against openssl s_server (-rev answers each line reversed),
# with ca_file, verification failures, and the timeouts and early closes
# that must be DOWN with a true message.
. "$abs_top_srcdir/tests/lib.sh"

make_ca
cert good localhost "DNS:localhost,IP:127.0.0.1" "-1 day" "+20 days"
cert other other.test "DNS:other.test" "-1 day" "+20 days"
tls_server rev good -rev
tls_server other other -rev
start_smtpd smtp
start_httpd web

cat >"$T/talk.ini" <<INI
[agent]
listen = off

[monitor:banner]
type = tcp
host = 127.0.0.1
port = $smtp_PORT
expect = 220

[monitor:quit]
type = tcp
host = 127.0.0.1
port = $smtp_PORT
send = QUIT\r\n
expect = 221

[monitor:http]
type = tcp
host = 127.0.0.1
port = $web_PORT
send = GET /status/200 HTTP/1.0\r\nHost: x\r\n\r\n
expect = 200 OK

[monitor:closed-early]
type = tcp
host = 127.0.0.1
port = $web_PORT
send = GET /status/200 HTTP/1.0\r\n\r\n
expect = NOT THERE

[monitor:silent]
type = tcp
host = 127.0.0.1
port = $smtp_PORT
expect = never said
timeout = 1s
retries = 0

[monitor:tls-rev]
type = tcp
host = localhost
port = $rev_PORT
tls = true
ca_file = $T/ca.pem
send = hello\n
expect = olleh

[monitor:tls-ip]
type = tcp
host = 127.0.0.1
port = $rev_PORT
tls = true
ca_file = $T/ca.pem

[monitor:tls-untrusted]
type = tcp
host = localhost
port = $rev_PORT
tls = true

[monitor:tls-unverified]
type = tcp
host = localhost
port = $rev_PORT
tls = true
verify_tls = false
send = abc\n
expect = cba

[monitor:tls-wrong-name]
type = tcp
host = 127.0.0.1
port = $other_PORT
tls = true
ca_file = $T/ca.pem
INI
rc=0
"$WATCHPOST" --once -c "$T/talk.ini" -P "$PLUGINS" >"$T/out" 2>"$T/once.log" || rc=$?
cat "$T/out"
[ "$rc" -eq 2 ] || fail "some DOWN: exit 2, got $rc"
line() { grep -E "^$1 +tcp +" "$T/out" || fail "no line for $1"; }
for m in banner quit http tls-rev tls-ip tls-unverified; do
	line "$m" | grep -q ' UP ' || fail "$m should be UP"
done
line closed-early | grep -Eq 'DOWN .*keyword: the server closed the connection after [0-9]+ bytes without "NOT THERE"; it said: HTTP/1.1 200' ||
    fail "closed-early: DOWN, keyword, what the server said"
line silent | grep -Eq 'DOWN .*timeout: no "never said" within 1s \([0-9]+ bytes came: 220 ' ||
    fail "silent: DOWN at the deadline, with the banner"
line tls-untrusted | grep -Eq 'DOWN .*tls: certificate verification failed: unable to get local issuer certificate' ||
    fail "tls-untrusted: DOWN, tls"
line tls-wrong-name | grep -Eq 'DOWN .*tls: certificate does not match the name 127.0.0.1' ||
    fail "tls-wrong-name: DOWN, tls, the name"
ok "send/expect over plain TCP and TLS, early close, silence, untrusted and wrong-name certificates"

cat >"$T/bad.ini" <<INI
[agent]
listen = off
[monitor:badescape]
type = tcp
host = 127.0.0.1
port = 1
send = a\qb
[monitor:badhex]
type = tcp
host = 127.0.0.1
port = 1
send = \xZZ
[monitor:cawithouttls]
type = tcp
host = 127.0.0.1
port = 1
ca_file = $T/ca.pem
[monitor:badca]
type = tcp
host = 127.0.0.1
port = 1
tls = true
ca_file = $T/ca.cnf
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" 2>"$T/bad.err" || rc=$?
cat "$T/bad.err"
[ "$rc" -eq 1 ] || fail "-t: exit 1, got $rc"
grep -q 'bad.ini:7: send: unknown escape' "$T/bad.err" || fail "-t: escape"
grep -q 'bad.ini:12: send: \\x needs two hex digits' "$T/bad.err" || fail "-t: hex"
grep -q 'bad.ini:17: ca_file: needs tls = true' "$T/bad.err" || fail "-t: ca_file without tls"
grep -q 'bad.ini:23: ca_file: .*ca.cnf: no PEM CA certificate could be read' "$T/bad.err" || fail "-t: bad ca_file"
ok "-t: send escapes, ca_file without tls, a ca_file that is no PEM"
