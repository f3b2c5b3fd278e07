#!/bin/bash
# watchpost -t on [alert:NAME] sections of type email: every problem is a
# FILE:LINE: message at the key's line (addresses, TLS and AUTH rules,
# template errors with their place in the template), all in one run, and
# no password is ever quoted; a good section passes.
. "$abs_top_srcdir/tests/lib.sh"

printf 'hunter2-secret-pw\n' >"$T/pw"
chmod 600 "$T/pw"
cat >"$T/bad.ini" <<'INI'
[agent]
database = agent.db

[monitor:m]
type = tcp
host = 127.0.0.1
port = 1
alerts = a1, a2, a3, a4, a5, a6, a7, a8

[alert:a1]
type = email
from = x@example.org
to = y@example.org

[alert:a2]
type = email
smtp_url = http://mail.example.org
from = x@example.org
to = y@example.org
tls = sometimes

[alert:a3]
type = email
smtp_url = smtps://mail.example.org
tls = off
from = x@example.org
to = y@example.org
username = wp

[alert:a4]
type = email
smtp_url = smtp://mail.example.org:587
tls = opportunistic
from = x@example.org
to = y@example.org
username = wp
password_file = pw

[alert:a5]
type = email
smtp_url = smtp://mail.example.org:587
from = x@example.org
to = y@example.org
verify_tls = false
ca_file = /etc/ssl/certs/ca-certificates.crt
subject_template = {{monitor}} is {{stat}}
body_template = {{monitor}} is {{state}}
body_template = {{#alerts}} {{monitor}}

[alert:a6]
type = email
smtp_url = smtp://mail.example.org
from = not an address
to = y@example.org
to = bad@@example.org
to = Name <ok@example.org>
password = hunter2-inline-pw
tls = off

[alert:a7]
type = email
smtp_url = smtp://mail.example.org
from = x@example.org
password = hunter2-inline-pw

[alert:a8]
type = email
smtp_url = smtp://wp:hunter2-in-url@mail.example.org:587
from = Ops, Team <ops@example.org>
to = y@example.org
INI

rc=0
"$WATCHPOST" -t -c "$T/bad.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "-t exited $rc on a bad file: $(cat "$T/t.out")"
F="$T/bad.ini"
while IFS= read -r want; do
	grep -qxF "$F:$want" "$T/t.out" || fail "-t did not say \"$want\":
$(cat "$T/t.out")"
done <<EOF
10: [alert:a1] is missing the required key "smtp_url" for type email
17: smtp_url: the scheme must be smtp or smtps
20: tls: "sometimes" is not a valid value (use required, opportunistic or off)
25: tls: smtps:// is always TLS; tls = opportunistic or off is for smtp:// (STARTTLS)
28: username: username and password (or password_file) go together
33: tls: a password needs tls = required (or smtps://): without it the password could cross the network in clear
45: ca_file: ca_file is for verifying the server, but verify_tls is off
46: subject_template: column 16: unknown field "stat" (fields: monitor type state previous_state reason error latency_ms timestamp since duration target id agent location confirmed_by count)
47: body_template: template line 2, column 1: {{#alerts}} without {{/alerts}}
53: from: "not an address": the address must be local@domain
54: to: "bad@@example.org": the address must be local@domain
57: password: username and password (or password_file) go together
58: tls: a password needs tls = required (or smtps://): without it the password could cross the network in clear
60: [alert:a7] is missing the required key "to" for type email
68: smtp_url: no credentials in the URL: use username and password_file
69: from: "Ops, Team <ops@example.org>": the display name must not contain any of ( ) < > [ ] : ; @ \\ , "
EOF
[ "$(grep -c "^$F:" "$T/t.out")" = 16 ] ||
    fail "expected 16 problems: $(cat "$T/t.out")"
! grep -q hunter2 "$T/t.out" || fail "-t quoted a password"
ok "-t: all 16 problems of the email sections at their lines, no password"

cat >"$T/good.ini" <<INI
[agent]
database = agent.db

[monitor:m]
type = tcp
host = 127.0.0.1
port = 1

[alert:mail]
type = email
smtp_url = smtps://mail.example.org
from = Watchpost <watchpost@example.org>
to = ops@example.org
to = On Call <oncall@example.org>
username = watchpost
password_file = $T/pw
subject_template = [wp] {{state}}: {{monitor}}
body_template = {{count}} alert(s):
body_template = {{#alerts}}- {{monitor}} is {{state}} ({{error}}){{|}}
body_template = {{/alerts}}
timeout = 30s
INI
"$WATCHPOST" -t -c "$T/good.ini" -P "$PLUGINS" >"$T/t.out" 2>&1 ||
    fail "-t refused a good email section: $(cat "$T/t.out")"
! grep -q hunter2 "$T/t.out" || fail "-t quoted a password"
ok "-t accepts a good email section"
