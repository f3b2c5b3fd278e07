#!/bin/bash
# The email alert type against a real SMTP server (Debian's aiosmtpd,
# tests/smtpsink.py) on loopback, with a CA and server certificate made
# here by openssl:
#   - mail: STARTTLS required, AUTH: a monitor going DOWN then UP sends
#     exactly one DOWN and one UP mail, over TLS, authenticated, with Date,
#     Message-ID, From, To, MIME headers and CRLF lines; a non-ASCII error
#     gives an RFC 2047 encoded Subject;
#   - plain: tls = required against a server without STARTTLS: nothing is
#     sent (not even AUTH in clear), the delivery is retried;
#   - wrongpw: a wrong password is a failed delivery retried with back-off
#     (1 s, then 2 s); once the password file is right (SIGHUP), the mail
#     arrives exactly once;
#   - noca: without ca_file the test CA is not trusted: never delivered;
#   - mute: a server that never answers: cancelled at the deadline, retried;
#   - tmpl: subject_template and body_template, a non-ASCII subject;
#   - smtps: smtps:// (TLS from the first byte) with AUTH;
#   - opp, off: tls = opportunistic and off, a server without STARTTLS;
#   - refused: one of two recipients refused: no mail at all (so a retry
#     never mails the other twice), retried;
# and no password is ever in the daemon's log.
. "$abs_top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
SINK="$abs_top_srcdir/tests/smtpsink.py"
"$PY" -c 'import aiosmtpd' 2>/dev/null ||
    fail "python3-aiosmtpd is missing (./bootstrap installs it)"

# A throwaway CA and a server certificate for 127.0.0.1 and localhost.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wp test CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null || fail "CSR"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/san.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
    -CAcreateserial -days 2 -extfile "$T/san.ext" -out "$T/srv.pem" \
    2>/dev/null || fail "server certificate"

PASSWORD='Sm7p-pa55w0rd-a7c1'
WRONG='Wr0ng-pa55w0rd-99e2'
printf '%s\n' "$PASSWORD" >"$T/server-password"
printf '%s\n' "$PASSWORD" >"$T/smtp-password"
printf '%s\n' "$WRONG" >"$T/wrong-password"
chmod 600 "$T/smtp-password" "$T/wrong-password"

# start_sink NAME ARGS...: smtpsink writing to $T/NAME, sets NAME_PORT.
start_sink() {
	local name=$1
	shift
	"$PY" "$SINK" --dir "$T/$name" "$@" >"$T/$name.out" 2>"$T/$name.log" &
	PIDS+=($!)
	wait_until 10 grep -q '^PORT ' "$T/$name.out" || fail "$name did not start"
	eval "${name}_PORT=$(sed -n 's/^PORT //p' "$T/$name.out")"
}
start_sink tls --cert "$T/srv.pem" --key "$T/srv.key" --user wp \
    --password-file "$T/server-password" --refuse nobody
start_sink clear --user wp --password-file "$T/server-password"
start_sink implicit --smtps --cert "$T/srv.pem" --key "$T/srv.key" --user wp \
    --password-file "$T/server-password"
start_sink open
# A server that takes the connection and never says a word.
"$PY" -c 'import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print("PORT", s.getsockname()[1], flush=True)
time.sleep(600)' >"$T/mute.out" &
PIDS+=($!)
wait_until 10 grep -q '^PORT ' "$T/mute.out" || fail "mute did not start"
mute_PORT=$(sed -n 's/^PORT //p' "$T/mute.out")
start_httpd flap --hook-status-file "$T/flap.status"
echo 200 >"$T/flap.status"

export WATCHPOST_ALERT_BACKOFF_MAX_MS=2000
cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = off

; UP while the flap server answers 200, DOWN while it answers 500.
[monitor:api-home]
type = http
url = http://127.0.0.1:$flap_PORT/hook
interval = 200ms
timeout = 2s
retries = 0
alerts = mail, plain, wrongpw, noca, tmpl, mute, refused, smtps, opp, off

; Always DOWN, with a non-ASCII error (the keyword is quoted in it).
[monitor:greeting]
type = http
url = http://127.0.0.1:$flap_PORT/hook
keyword = Grüße
interval = 200ms
timeout = 2s
retries = 0
alerts = mail

[alert:mail]
type = email
smtp_url = smtp://127.0.0.1:$tls_PORT
from = Watchpost <watchpost@example.org>
to = ops@example.org
to = On Call <oncall@example.org>
username = wp
password_file = $T/smtp-password
ca_file = $T/ca.pem
timeout = 30s

[alert:plain]
type = email
smtp_url = smtp://127.0.0.1:$clear_PORT
from = plain@example.org
to = ops@example.org
username = wp
password_file = $T/smtp-password
timeout = 30s

[alert:wrongpw]
type = email
smtp_url = smtp://localhost:$tls_PORT
from = wrongpw@example.org
to = ops@example.org
username = wp
password_file = $T/wrong-password
ca_file = $T/ca.pem
timeout = 30s

; Templates: a non-ASCII subject of the operator's own.
[alert:tmpl]
type = email
smtp_url = smtp://127.0.0.1:$tls_PORT
from = tmpl@example.org
to = ops@example.org
username = wp
password_file = $T/smtp-password
ca_file = $T/ca.pem
subject_template = Störung: {{monitor}} is {{state}}
body_template = {{monitor}} went {{state}} ({{error}})
body_template = previous: {{previous_state}}
timeout = 30s

; The deadline: cancelled, retried.
[alert:mute]
type = email
smtp_url = smtp://127.0.0.1:$mute_PORT
from = mute@example.org
to = ops@example.org
timeout = 1s

; One recipient refused: nobody gets the mail, it is retried.
[alert:refused]
type = email
smtp_url = smtp://127.0.0.1:$tls_PORT
from = refused@example.org
to = ops@example.org
to = nobody@example.org
username = wp
password_file = $T/smtp-password
ca_file = $T/ca.pem
timeout = 30s

; smtps://: TLS from the first byte, AUTH.
[alert:smtps]
type = email
smtp_url = smtps://localhost:$implicit_PORT
from = smtps@example.org
to = ops@example.org
username = wp
password_file = $T/smtp-password
ca_file = $T/ca.pem
timeout = 30s

; A server without STARTTLS or AUTH: opportunistic and off send in clear.
[alert:opp]
type = email
smtp_url = smtp://127.0.0.1:$open_PORT
tls = opportunistic
from = opp@example.org
to = ops@example.org
timeout = 30s

[alert:off]
type = email
smtp_url = smtp://127.0.0.1:$open_PORT
tls = off
from = off@example.org
to = ops@example.org
timeout = 30s

[alert:noca]
type = email
smtp_url = smtp://127.0.0.1:$tls_PORT
from = noca@example.org
to = ops@example.org
timeout = 30s
INI
"$WATCHPOST" -t -c "$T/agent.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 ||
    fail "-t: $(cat "$T/t.out")"

delivered() { grep -c "alert $1: delivered $2 alert for monitor $3" "$T/agent.log" || true; }
failed() { grep -c "alert $1: delivery for monitor $2 failed ($3" "$T/agent.log" || true; }
transitions() { grep -c "monitor api-home: .* -> [A-Z]" "$T/agent.log" || true; }

start_agent "$T/agent.ini"
wait_until 60 at_least 1 transitions || fail "api-home did not come up"
echo 500 >"$T/flap.status"
wait_until 60 at_least 2 transitions || fail "api-home did not go down"
wait_until 90 at_least 1 delivered mail down api-home ||
    fail "the DOWN mail was not delivered"
EXPECT=1 wait_until 90 is delivered mail down greeting ||
    fail "greeting's DOWN mail was not delivered"
echo 200 >"$T/flap.status"
wait_until 60 at_least 3 transitions || fail "api-home did not come back up"
wait_until 90 at_least 1 delivered mail up api-home ||
    fail "the UP mail was not delivered"
wait_until 90 at_least 1 delivered tmpl up api-home ||
    fail "the templated UP mail was not delivered"
for sec in smtps opp off; do
	wait_until 90 at_least 1 delivered $sec up api-home ||
	    fail "$sec: the UP mail was not delivered"
done

# plain and wrongpw fail and are retried (at least twice each), noca too.
wait_until 90 at_least 2 failed plain api-home \
    "the SMTP server does not offer STARTTLS" ||
    fail "tls = required against a server without STARTTLS: not retried"
wait_until 90 at_least 3 failed wrongpw api-home \
    "SMTP authentication failed" ||
    fail "a wrong password was not a retried failed delivery"
wait_until 90 at_least 1 failed noca api-home \
    "TLS certificate verification failed" ||
    fail "noca: the untrusted certificate was not refused"
wait_until 90 at_least 2 failed mute api-home \
    "timed out before the SMTP server answered" ||
    fail "mute: the deadline did not cancel the delivery and retry it"
wait_until 90 at_least 2 failed refused api-home \
    "SMTP server refused the mail" ||
    fail "refused: a refused recipient was not a retried failed delivery"
ok "plain, wrongpw, noca, mute and refused failed and were retried"

# Back-off: the wrong password's retries wait 1 s, then 2 s (the cap).
backoff=$(grep "alert wrongpw: delivery for monitor api-home failed" \
    "$T/agent.log" | head -3 | sed -n 's/.*retrying in \([0-9]*\) ms.*/\1/p' |
    tr "\n" " " | sed "s/ $//")
[ "$backoff" = "1000 2000 2000" ] || fail "back-off was: $backoff"
ok "wrong password: retried with back-off ($backoff ms)"

# Fix the password and reload: the waiting DOWN mail goes out, once.
printf '%s\n' "$PASSWORD" >"$T/wrong-password"
kill -HUP "$AGENT_PID"
wait_until 90 at_least 1 delivered wrongpw down api-home ||
    fail "wrongpw: not delivered once the password was right"
wait_until 90 at_least 1 delivered wrongpw up api-home ||
    fail "wrongpw: the UP mail did not follow"
stop_agent

# What the server got.  check.py prints one line per message.
cat >"$T/check.py" <<'PY'
import email, email.policy, email.utils, json, re, sys
d = sys.argv[1]
for line in open(d + "/messages.jsonl"):
    m = json.loads(line)
    raw = open(d + "/" + m["file"], "rb").read()
    # Every line ends in CRLF: no bare LF, no bare CR.
    crlf = b"\n" not in raw.replace(b"\r\n", b"") and \
        b"\r" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    date = email.utils.parsedate_to_datetime(msg["Date"])
    def rawh(name):  # the header as sent, unfolded
        h = re.search(rb"^" + name + rb":(.*(?:\r\n[ \t].*)*)", raw, re.M)
        return h.group(1).replace(b"\r\n", b"").decode().strip()
    raw_subject = rawh(b"Subject")
    print("\t".join([
        m["mail_from"], ",".join(m["rcpt_tos"]), str(m["tls"]),
        str(m["auth"]), str(crlf), str(date.utcoffset().total_seconds()),
        msg["Message-ID"], msg["From"], msg["To"], str(msg["Subject"]),
        "encoded" if "=?UTF-8?" in raw_subject else "plain",
        msg["MIME-Version"], rawh(b"Content-Type"),
        msg["Content-Transfer-Encoding"], msg["X-Watchpost-Alert-Id"],
        msg.get_content().replace("\r\n", "\n").replace("\n", "|")]))
PY
"$PY" "$T/check.py" "$T/tls" >"$T/got.tsv" || fail "could not read the mails"
cat "$T/agent-previous.txt" "$T/agent.log" >"$T/agent-all.log" 2>/dev/null ||
    cat "$T/agent.log" >"$T/agent-all.log"
field() { cut -f"$1"; }

# One mail per alert and section: as many DOWN (UP) mails as DOWN (UP)
# alerts were delivered -- once each here, more if a check on a slow
# machine (valgrind) flapped -- and no alert id twice.
n_down=$(grep -c "alert mail: delivered down alert for monitor api-home" "$T/agent-all.log" || true)
n_up=$(grep -c "alert mail: delivered up alert for monitor api-home" "$T/agent-all.log" || true)
[ "$n_down" -ge 1 ] && [ "$n_up" -ge 1 ] || fail "delivered: $n_down DOWN, $n_up UP"
n_all=$(grep -cE "alert wrongpw: delivered (down|up) alert for monitor api-home" "$T/agent-all.log" || true)
n_tmpl=$(grep -cE "alert tmpl: delivered (down|up) alert for monitor api-home" "$T/agent-all.log" || true)
mine() { grep -P "^watchpost@example.org\t" "$T/got.tsv" | grep -F "$1" || true; }
[ "$(mine 'DOWN: api-home' | wc -l)" = "$n_down" ] ||
    fail "DOWN mails for api-home: $(mine 'DOWN: api-home' | wc -l), not $n_down"
[ "$(mine 'UP: api-home' | wc -l)" = "$n_up" ] ||
    fail "UP mails for api-home: $(mine 'UP: api-home' | wc -l), not $n_up"
[ "$(mine 'greeting' | wc -l)" = 1 ] ||
    fail "DOWN mails for greeting: $(mine 'greeting' | wc -l)"
[ "$(grep -c -P "^watchpost@example.org\t" "$T/got.tsv")" = $((n_down + n_up + 1)) ] ||
    fail "section mail sent $(grep -c -P "^watchpost@" "$T/got.tsv") mails"
dups=$(cut -f1,15 "$T/got.tsv" | sort | uniq -d)
[ -z "$dups" ] || fail "mails sent twice (section, alert id): $dups"
ok "mail: one mail per transition ($n_down DOWN, $n_up UP for api-home, one for greeting), no alert id twice"

down=$(mine 'DOWN: api-home' | head -1)
up=$(mine 'UP: api-home' | head -1)
for m in "$down" "$up"; do
	[ "$(echo "$m" | field 2)" = "ops@example.org,oncall@example.org" ] ||
	    fail "envelope recipients: $(echo "$m" | field 2)"
	[ "$(echo "$m" | field 3)" = True ] || fail "not sent over STARTTLS"
	[ "$(echo "$m" | field 4)" = wp ] || fail "not authenticated"
	[ "$(echo "$m" | field 5)" = True ] || fail "lines not CRLF"
	[ "$(echo "$m" | field 6)" = 0.0 ] || fail "Date not in UTC"
	echo "$m" | field 7 | grep -qE '^<watchpost\.[0-9]+\.[0-9]+\.mail\.[A-Za-z0-9-]+@example\.org>$' ||
	    fail "Message-ID: $(echo "$m" | field 7)"
	[ "$(echo "$m" | field 8)" = "Watchpost <watchpost@example.org>" ] ||
	    fail "From: $(echo "$m" | field 8)"
	[ "$(echo "$m" | field 9)" = "ops@example.org, On Call <oncall@example.org>" ] ||
	    fail "To: $(echo "$m" | field 9)"
	[ "$(echo "$m" | field 12)" = 1.0 ] || fail "MIME-Version"
	[ "$(echo "$m" | field 13)" = "text/plain; charset=utf-8" ] ||
	    fail "Content-Type: $(echo "$m" | field 13)"
	[ "$(echo "$m" | field 14)" = 7bit ] || fail "CTE: $(echo "$m" | field 14)"
done
[ "$(echo "$down" | field 7)" != "$(echo "$up" | field 7)" ] ||
    fail "DOWN and UP share a Message-ID"
# The Message-ID is the alert's stable id.
echo "$down" | field 7 | grep -q "^<watchpost\.$(echo "$down" | field 15)\." ||
    fail "the Message-ID does not carry the alert id"
ok "headers: Date (UTC), Message-ID, From, To, MIME; CRLF; STARTTLS and AUTH"

[ "$(echo "$down" | field 10)" = "[watchpost] DOWN: api-home (HTTP 500, expected 200-299)" ] ||
    [ "$(echo "$down" | field 10 | cut -c1-29)" = "[watchpost] DOWN: api-home (" ] ||
    fail "DOWN subject: $(echo "$down" | field 10)"
[ "$(echo "$down" | field 11)" = plain ] || fail "an ASCII subject was encoded"
echo "$up" | field 10 | grep -qE '^\[watchpost\] UP: api-home( \(down for [0-9]+s\))?$' ||
    fail "UP subject: $(echo "$up" | field 10)"
body=$(echo "$down" | field 16)
for want in "api-home is DOWN" "Monitor:   api-home (http)" \
    "State:     DOWN (was UP)" "Error:     " "Alert id:  "; do
	case "$body" in *"$want"*) ;; *) fail "DOWN body lacks \"$want\": $body" ;; esac
done
ok "subjects and body read well: $(echo "$down" | field 10)"

g=$(mine greeting)
[ "$(echo "$g" | field 11)" = encoded ] || fail "non-ASCII subject not RFC 2047 encoded"
echo "$g" | field 10 | grep -qF '[watchpost] DOWN: greeting (keyword "Grüße"' ||
    fail "encoded subject decodes to: $(echo "$g" | field 10)"
[ "$(echo "$g" | field 14)" = quoted-printable ] ||
    fail "a non-ASCII body was sent as $(echo "$g" | field 14)"
echo "$g" | field 16 | grep -qF 'Grüße' || fail "the body lost the ü"
ok "non-ASCII error: Subject RFC 2047 encoded, body quoted-printable, both decode"

# Nothing went to the server without STARTTLS, not even AUTH.
[ ! -s "$T/clear/messages.jsonl" ] || fail "tls = required, yet a mail was sent in clear"
[ ! -s "$T/clear/events.log" ] || fail "events on the clear server: $(cat "$T/clear/events.log")"
ok "tls = required: no mail and no AUTH in clear"

# wrongpw: failed AUTH attempts, then exactly one DOWN and one UP.
[ "$(grep -c '^auth-fail wp' "$T/tls/events.log")" -ge 3 ] ||
    fail "the server saw $(grep -c '^auth-fail' "$T/tls/events.log") failed AUTHs"
[ "$(grep -c -P "^wrongpw@example.org\t" "$T/got.tsv")" = "$n_all" ] ||
    fail "wrongpw sent $(grep -c -P "^wrongpw@" "$T/got.tsv") mails, not $n_all"
[ "$(grep -c -P "^refused@example.org\t" "$T/got.tsv")" = 0 ] ||
    fail "refused: the accepted recipient got a mail anyway"
[ "$(grep -c -P "^noca@example.org\t" "$T/got.tsv")" = 0 ] ||
    fail "noca delivered through an untrusted certificate"
ok "wrong password: failed AUTHs, then each mail exactly once"

# tmpl: the subject and body templates, the subject RFC 2047 encoded.
tm() { grep -P "^tmpl@example.org\t" "$T/got.tsv" | grep -F "$1" || true; }
[ "$(grep -c -P "^tmpl@example.org\t" "$T/got.tsv")" = "$n_tmpl" ] ||
    fail "tmpl sent $(grep -c -P "^tmpl@" "$T/got.tsv") mails, not $n_tmpl"
[ "$(tm 'is down' | head -1 | field 10)" = "Störung: api-home is down" ] ||
    fail "templated subject: $(tm 'is down' | field 10)"
[ "$(tm 'is down' | head -1 | field 11)" = encoded ] || fail "templated subject not encoded"
[ "$(tm 'is up' | head -1 | field 16)" = "api-home went up ()|previous: down|" ] ||
    fail "templated UP body: $(tm 'is up' | field 16)"
tm 'is down' | head -1 | field 16 | grep -q '^api-home went down (HTTP 500' ||
    fail "templated DOWN body: $(tm 'is down' | field 16)"
ok "templates: subject \"$(tm 'is down' | head -1 | field 10)\", body rendered"

# smtps:// (TLS from the first byte, AUTH); opportunistic and off against
# a server offering neither STARTTLS nor AUTH: one mail per alert each.
"$PY" "$T/check.py" "$T/implicit" >"$T/implicit.tsv" || fail "implicit mails"
"$PY" "$T/check.py" "$T/open" >"$T/open.tsv" || fail "open mails"
n=$(grep -cE "alert smtps: delivered (down|up) alert for monitor api-home" "$T/agent-all.log" || true)
[ "$(grep -c -P "^smtps@example.org\tops@example.org\tTrue\twp\tTrue\t" "$T/implicit.tsv")" = "$n" ] ||
    fail "smtps: $(cut -f1-5 "$T/implicit.tsv"), $n delivered"
for sec in opp off; do
	n=$(grep -cE "alert $sec: delivered (down|up) alert for monitor api-home" "$T/agent-all.log" || true)
	[ "$(grep -c -P "^$sec@example.org\tops@example.org\tFalse\tNone\tTrue\t" "$T/open.tsv")" = "$n" ] ||
	    fail "$sec: $(grep "^$sec@" "$T/open.tsv" | cut -f1-5), $n delivered"
done
ok "smtps:// with AUTH; tls = opportunistic and off without STARTTLS on offer"

for pw in "$PASSWORD" "$WRONG"; do
	! grep -qF "$pw" "$T/agent.log" "$T/agent-previous.txt" "$T/agent.out" \
	    2>/dev/null || fail "a password is in the daemon's output"
done
ok "no password in the daemon's log"
