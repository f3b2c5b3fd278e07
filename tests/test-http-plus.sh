#!/bin/bash
# The http keys for private CAs, mutual TLS, IP version, proxies and the
# body cap, against real servers on loopback: testhttpd serving HTTPS with
# a certificate from a CA made here, openssl s_server asking for a client
# certificate, and Debian's tinyproxy.  Proves the verdicts, that the proxy
# carried the request, that proxy credentials reach no output, and -t.
. "$abs_top_srcdir/tests/lib.sh"

make_ca
cert good localhost "DNS:localhost,IP:127.0.0.1" "-1 day" "+20 days"
cert client "watchpost client" "DNS:client.test" "-1 day" "+20 days"
start_httpd tlsd --tls "$T/good.pem" "$T/good.key"
start_httpd plain
# s_server -www answers GET with a status page; -Verify 1 demands a client
# certificate that the CA signed.
tls_server mtls good -quiet -www -Verify 1 -CAfile "$T/ca.pem"

# tinyproxy in the foreground on a free loopback port.
command -v tinyproxy >/dev/null ||
    fail "tinyproxy is missing: install the Debian package tinyproxy"
for try in 1 2 3 4 5 6 7 8; do
	PROXY_PORT=$(free_port_try "$try")
	cat >"$T/tinyproxy.conf" <<CONF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 30
LogFile "$T/tinyproxy.log"
LogLevel Info
MaxClients 20
Allow 127.0.0.1
CONF
	: >"$T/tinyproxy.log"
	tinyproxy -d -c "$T/tinyproxy.conf" >"$T/tinyproxy.out" 2>&1 &
	PIDS+=($!)
	if wait_until 5 port_open "$PROXY_PORT" && kill -0 $! 2>/dev/null; then
		break
	fi
	PROXY_PORT=
done
[ -n "$PROXY_PORT" ] || fail "tinyproxy did not start"
CLOSED=$(free_port_try 99)
while port_open "$CLOSED"; do CLOSED=$((CLOSED + 1)); done

cat >"$T/plus.ini" <<INI
[agent]
listen = off

[monitor:private-ca]
type = http
url = https://localhost:$tlsd_PORT/body/hello
ca_file = $T/ca.pem
keyword = hello

[monitor:no-ca]
type = http
url = https://localhost:$tlsd_PORT/body/hello

[monitor:mtls]
type = http
url = https://localhost:$mtls_PORT/
ca_file = $T/ca.pem
client_cert = $T/client.pem
client_key = $T/client.key

[monitor:mtls-nocert]
type = http
url = https://localhost:$mtls_PORT/
ca_file = $T/ca.pem

[monitor:ipv4]
type = http
url = http://127.0.0.1:$plain_PORT/status/200
ip_version = 4

[monitor:ipv6-only]
type = http
url = http://127.0.0.1:$plain_PORT/status/200
ip_version = 6

[monitor:proxied]
type = http
url = http://127.0.0.1:$plain_PORT/body/viaproxy
proxy = http://127.0.0.1:$PROXY_PORT
keyword = viaproxy

[monitor:proxy-down]
type = http
url = http://127.0.0.1:$plain_PORT/body/viaproxy
proxy = http://scott:tiger-secret@127.0.0.1:$CLOSED

[monitor:cap-small]
type = http
url = http://127.0.0.1:$plain_PORT/body/aaaaaaaaaaXYZ
keyword = XYZ
max_body = 5

[monitor:cap-big]
type = http
url = http://127.0.0.1:$plain_PORT/body/aaaaaaaaaaXYZ
keyword = XYZ
max_body = 100
INI
rc=0
"$WATCHPOST" --once -c "$T/plus.ini" -P "$PLUGINS" >"$T/out" 2>"$T/once.log" || rc=$?
cat "$T/out"
[ "$rc" -eq 2 ] || fail "some monitors DOWN: exit 2, got $rc"
line() { grep -E "^$1 +http +" "$T/out" || fail "no line for $1"; }
line private-ca | grep -q ' UP ' || fail "ca_file: UP with the private CA"
line no-ca | grep -Eq ' DOWN .*tls' || fail "no ca_file: DOWN, tls"
line mtls | grep -q ' UP ' || fail "client_cert: UP against a server demanding one"
line mtls-nocert | grep -q ' DOWN ' || fail "no client_cert: DOWN"
line ipv4 | grep -q ' UP ' || fail "ip_version = 4: UP"
line ipv6-only | grep -q ' DOWN ' || fail "ip_version = 6 to an IPv4 address: DOWN"
line proxied | grep -q ' UP ' || fail "proxy: UP through tinyproxy"
grep -q "GET http://127.0.0.1:$plain_PORT/body/viaproxy" "$T/tinyproxy.log" ||
    fail "tinyproxy's log has the request"
line proxy-down | grep -q ' DOWN ' || fail "proxy that is not there: DOWN"
if grep -q 'tiger-secret' "$T/out" "$T/once.log"; then
	fail "a proxy password reached the output"
fi
line cap-small | grep -Eq ' DOWN .*keyword' || fail "max_body = 5: the keyword past it is not seen"
line cap-big | grep -q ' UP ' || fail "max_body = 100: UP"
ok "ca_file, client_cert/client_key, ip_version, proxy (tinyproxy, no credentials shown), max_body"

# The agent stores what --once printed.
DB="$T/plus.db"
cat >"$T/agent.ini" <<INI
[agent]
database = $DB
listen = off
[monitor:private-ca]
type = http
url = https://localhost:$tlsd_PORT/body/hello
ca_file = $T/ca.pem
interval = 1s
[monitor:no-ca]
type = http
url = https://localhost:$tlsd_PORT/body/hello
interval = 1s
INI
start_agent "$T/agent.ini"
EXPECT=up wait_until 20 is state_of private-ca || fail "private-ca never UP"
EXPECT=down wait_until 20 is state_of no-ca || fail "no-ca never DOWN"
stop_agent
ok "agent: private-ca up, no-ca down in SQLite"

# -t
echo "not a certificate" >"$T/notpem.pem"
cat >"$T/bad.ini" <<INI
[agent]
listen = off
[monitor:notpem]
type = http
url = https://localhost/
ca_file = $T/notpem.pem
[monitor:halfmtls]
type = http
url = https://localhost/
client_cert = $T/client.pem
[monitor:nokey]
type = http
url = https://localhost/
client_cert = $T/client.pem
client_key = $T/missing.key
[monitor:badip]
type = http
url = http://localhost/
ip_version = 5
[monitor:badproxy]
type = http
url = http://localhost/
proxy = ftp://127.0.0.1:21
[monitor:bigcap]
type = http
url = http://localhost/
max_body = 1000000000
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" 2>"$T/bad.err" || rc=$?
cat "$T/bad.err"
[ "$rc" -eq 1 ] || fail "-t: exit 1, got $rc"
grep -q 'bad.ini:[0-9]*: ca_file: .*notpem.pem holds no PEM certificate' "$T/bad.err" || fail "-t: ca_file not PEM"
grep -q 'bad.ini:[0-9]*: client_cert: client_cert and client_key go together' "$T/bad.err" || fail "-t: half mTLS"
grep -q 'bad.ini:[0-9]*: client_key: cannot read .*missing.key' "$T/bad.err" || fail "-t: unreadable key"
grep -q 'bad.ini:[0-9]*: .*ip_version' "$T/bad.err" || fail "-t: ip_version"
grep -q 'bad.ini:[0-9]*: .*proxy' "$T/bad.err" || fail "-t: proxy scheme"
grep -q 'bad.ini:[0-9]*: .*max_body' "$T/bad.err" || fail "-t: max_body bound"
ok "-t: ca_file, client_cert without client_key, unreadable key, ip_version, proxy scheme, max_body"
