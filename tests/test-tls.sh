#!/bin/bash
# The tls check type against real TLS servers on loopback: openssl s_server
# with certificates made here (a throwaway CA; a good, an expired and a
# wrong-name case), and Debian's aiosmtpd offering STARTTLS.  Proves the
# verdicts and their messages, SNI, ca_file, verify_tls, STARTTLS, what
# reaches SQLite and /metrics, and -t errors.
. "$abs_top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import aiosmtpd' 2>/dev/null ||
    fail "aiosmtpd is missing: install the Debian package python3-aiosmtpd"

# ---- certificates ----
cd "$T"
cat >ca.cnf <<'CNF'
[ca]
default_ca = ca_sect
[ca_sect]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = copy
[pol]
commonName = supplied
CNF
: >index.txt
echo 01 >serial
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -days 30 -subj "/CN=watchpost test CA/O=watchpost tests" 2>/dev/null ||
    fail "openssl: CA"
utc() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
# cert NAME CN SAN FROM TO: NAME.pem and NAME.key signed by the CA.
cert() {
	openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
	    -subj "/CN=$2" -addext "subjectAltName=$3" 2>/dev/null &&
	openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
	    -in "$1.csr" -out "$1.pem" -startdate "$(utc "$4")" \
	    -enddate "$(utc "$5")" -notext >/dev/null 2>&1 ||
	    fail "openssl: certificate $1"
}
cert good localhost "DNS:localhost,IP:127.0.0.1" "-1 day" "+20 days"
cert expired localhost "DNS:localhost,IP:127.0.0.1" "-10 days" "-1 day"
cd - >/dev/null

# tls_server NAME CERT: openssl s_server on a free port; sets NAME_PORT.
tls_server() {
	local name=$1 try port
	for try in 1 2 3 4 5 6 7 8; do
		port=$(( 20000 + (RANDOM * 7 + try * 131) % 40000 ))
		openssl s_server -accept "127.0.0.1:$port" -cert "$T/$2.pem" \
		    -key "$T/$2.key" -quiet </dev/null >"$T/$name.log" 2>&1 &
		PIDS+=($!)
		if wait_until 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" \
		    2>/dev/null; then
			eval "${name}_PORT=$port"
			return 0
		fi
	done
	fail "openssl s_server $name did not start"
}
tls_server good good
tls_server expired expired

# An SMTP server offering STARTTLS with the good certificate.
for try in 1 2 3 4 5 6 7 8; do
	SMTP_PORT=$(( 20000 + (RANDOM * 7 + try * 131) % 40000 ))
	"$PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
	    --tlscert "$T/good.pem" --tlskey "$T/good.key" \
	    >"$T/smtp.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SMTP_PORT" \
	    2>/dev/null && break
done
# ... and one without STARTTLS.
for try in 1 2 3 4 5 6 7 8; do
	PLAIN_PORT=$(( 20000 + (RANDOM * 7 + try * 131) % 40000 ))
	"$PY" -m aiosmtpd -n -l "127.0.0.1:$PLAIN_PORT" >"$T/plain.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PLAIN_PORT" \
	    2>/dev/null && break
done

cat >"$T/tls.ini" <<INI
[agent]
listen = off

[monitor:good]
type = tls
host = 127.0.0.1
port = $good_PORT
ca_file = $T/ca.pem

[monitor:sni]
type = tls
host = 127.0.0.1
port = $good_PORT
servername = localhost
ca_file = $T/ca.pem

[monitor:untrusted]
type = tls
host = 127.0.0.1
port = $good_PORT

[monitor:wrong-name]
type = tls
host = 127.0.0.1
port = $good_PORT
servername = wrong.example
ca_file = $T/ca.pem

[monitor:expired]
type = tls
host = 127.0.0.1
port = $expired_PORT
ca_file = $T/ca.pem

[monitor:expired-unverified]
type = tls
host = 127.0.0.1
port = $expired_PORT
verify_tls = false

[monitor:smtp]
type = tls
host = localhost
port = $SMTP_PORT
starttls = smtp
ca_file = $T/ca.pem

[monitor:smtp-plain]
type = tls
host = localhost
port = $PLAIN_PORT
starttls = smtp
ca_file = $T/ca.pem
INI
rc=0
"$WATCHPOST" --once -c "$T/tls.ini" -P "$PLUGINS" >"$T/out" 2>"$T/once.log" || rc=$?
cat "$T/out"
[ "$rc" -eq 2 ] || fail "some monitors DOWN: exit 2, got $rc"
line() { grep -E "^$1 +tls +" "$T/out" || fail "no line for $1"; }
line good | grep -Eq 'UP .*TLSv1\.[23], issuer O=watchpost tests,CN=watchpost test CA; expires [0-9-]+ \((19|20) days\)' ||
    fail "good: UP with protocol, issuer and expiry"
line sni | grep -q ' UP ' || fail "sni: UP with servername = localhost"
line untrusted | grep -Eq 'DOWN .*tls: certificate verification failed: unable to get local issuer certificate' ||
    fail "untrusted: DOWN, tls, OpenSSL's reason"
line wrong-name | grep -Eq 'DOWN .*tls: certificate does not match the name wrong.example' ||
    fail "wrong-name: DOWN, tls, the name"
line expired | grep -Eq 'DOWN .*tls: certificate verification failed: certificate has expired' ||
    fail "expired: DOWN, tls"
line expired-unverified | grep -Eq 'UP .*expired [0-9-]+ \(1 days ago\)' ||
    fail "verify_tls = false: UP, saying it expired"
line smtp | grep -Eq 'UP .*TLSv1\.[23], issuer' || fail "smtp STARTTLS: UP"
line smtp-plain | grep -Eq 'DOWN .*tls: the server does not offer STARTTLS' ||
    fail "no STARTTLS: DOWN, never on in clear text"
ok "handshakes: good, SNI, untrusted, wrong name, expired, verify_tls = false, STARTTLS (smtp), no STARTTLS"

# -t
cat >"$T/bad.ini" <<INI
[agent]
listen = off
[monitor:noport]
type = tls
host = 127.0.0.1
[monitor:badstarttls]
type = tls
host = 127.0.0.1
port = 25
starttls = gopher
[monitor:noca]
type = tls
host = 127.0.0.1
port = 443
ca_file = $T/missing.pem
INI
rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" 2>"$T/bad.err" || rc=$?
cat "$T/bad.err"
[ "$rc" -eq 1 ] || fail "-t: exit 1, got $rc"
grep -q 'bad.ini:[0-9]*: .*port' "$T/bad.err" || fail "-t: missing port"
grep -q 'bad.ini:[0-9]*: .*gopher' "$T/bad.err" || fail "-t: starttls value"
grep -q 'bad.ini:[0-9]*: ca_file: .*missing.pem' "$T/bad.err" || fail "-t: ca_file"
ok "-t: missing port, bad starttls, unreadable ca_file as FILE:LINE"

# The agent: rows, the certificate's expiry and the measurements.
DB="$T/tls.db"
cat >"$T/agent.ini" <<INI
[agent]
database = $DB
listen = 127.0.0.1:0
[monitor:good]
type = tls
host = 127.0.0.1
port = $good_PORT
ca_file = $T/ca.pem
interval = 1s
INI
start_agent "$T/agent.ini"
EXPECT=up wait_until 20 is state_of good || fail "good never UP"
names() { sql "$DB" "SELECT group_concat(name, ',') FROM (SELECT x.name FROM measurements x JOIN checks c ON c.id = x.check_id WHERE c.id = (SELECT max(id) FROM checks) ORDER BY x.name)"; }
EXPECT=cert_remaining_seconds,handshake_seconds wait_until 10 is names ||
    fail "measurements: $(names)"
exp=$(sql "$DB" "SELECT cert_expiry FROM checks ORDER BY id DESC LIMIT 1")
want=$(date -u -d "$(openssl x509 -in "$T/good.pem" -noout -enddate | cut -d= -f2)" +%s)
[ "$exp" = "$want" ] || fail "cert_expiry $exp, certificate says $want"
curl -fsS "$API/metrics" >"$T/metrics"
grep -q '^watchpost_monitor_measurement{monitor="good",type="tls",name="cert_remaining_seconds"} ' "$T/metrics" ||
    fail "cert_remaining_seconds on /metrics"
stop_agent
ok "the agent stores the certificate's expiry and exports handshake and cert_remaining"
