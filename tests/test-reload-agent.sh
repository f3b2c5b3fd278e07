#!/bin/bash
# SIGHUP and the [agent] section (issue 12, item 9): log_level, log,
# retention_days and the API token (api_token_file re-read: replaced,
# removed, added) apply at once; listen, database, plugin_dir, user and
# pidfile are named in a warning that says a restart is needed.
. "$abs_top_srcdir/tests/lib.sh"

start_httpd web
DB="$T/agent.db"

# write_conf LOG_LEVEL RETENTION_DAYS TOKEN_LINE [LISTEN]
write_conf() {
	cat >"$T/agent.ini" <<INI
[agent]
database = agent.db
listen = ${4:-127.0.0.1:0}
log_level = $1
retention_days = $2
$3

[monitor:web]
type = http
url = http://127.0.0.1:$web_PORT/status/200
interval = 300ms
INI
}
# status AUTH PATH: the HTTP status of GET PATH with header AUTH ("" none).
status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
	    ${1:+-H "Authorization: $1"} "$API$2"
}
# reload_ok: SIGHUP, wait until this reload is applied (the Nth summary).
reloads=0
applied() { [ "$(grep -c 'reload applied' "$T/agent.log")" -ge "$reloads" ]; }
reload_ok() {
	reloads=$((reloads + 1))
	kill -HUP "$AGENT_PID"
	wait_until 10 applied || fail "reload $reloads not applied"
}

# A first run creates the database; a check row 10 days old is then added
# by hand, for retention to find.
printf 'first-token\n' >"$T/token"
chmod 600 "$T/token"
write_conf info 0 "api_token_file = token"
start_agent "$T/agent.ini"
# "started": the signal handlers are in place (valgrind is slow to get there).
wait_until 30 grep -q " started: " "$T/agent.log" || fail "the agent did not start"
stop_agent
old_ts=$(( ($(date +%s) - 10 * 86400) * 1000 ))
sql "$DB" "INSERT INTO checks(monitor_id, ts, ok) SELECT id, $old_ts, 1 FROM monitors WHERE name = 'web'"
old_rows() { sql "$DB" "SELECT count(*) FROM checks WHERE ts = $old_ts"; }
[ "$(old_rows)" = 1 ] || fail "could not add an old check row"

start_agent "$T/agent.ini"
[ "$(status "Bearer first-token" /api/monitors)" = 200 ] || fail "token accepted"
[ "$(status "" /api/monitors)" = 401 ] || fail "no token refused"
sleep 1
grep -q ' debug ' "$T/agent.log" && fail "debug lines at log_level = info"

# log_level: debug lines appear once it says debug.
write_conf debug 0 "api_token_file = token"
reload_ok
grep -q "reload: \[agent\] log_level debug, log stderr" "$T/agent.log" ||
    fail "log_level change not logged"
has_debug() { sed -n '/reload applied/,$p' "$T/agent.log" | grep -q ' debug  *monitor web: up'; }
wait_until 10 has_debug || fail "no debug lines after log_level = debug"
ok "SIGHUP: log_level = debug applies at once"

# The token: a new one in the same file replaces the old one.
printf 'second-token\n' >"$T/token"
reload_ok
grep -q "API token replaced" "$T/agent.log" || fail "token change not logged"
[ "$(status "Bearer second-token" /api/monitors)" = 200 ] || fail "new token refused"
[ "$(status "Bearer first-token" /api/monitors)" = 401 ] || fail "old token still accepted"
grep -q "first-token\|second-token" "$T/agent.log" && fail "a token reached the log"
# An unreadable token file rejects the reload; the token in force stays.
chmod 644 "$T/token"
kill -HUP "$AGENT_PID"
wait_until 10 grep -q "reload rejected" "$T/agent.log" || fail "readable token file accepted"
grep -q "agent.ini:1: api_token_file: " "$T/agent.log" || fail "token problem as FILE:LINE"
[ "$(status "Bearer second-token" /api/monitors)" = 200 ] || fail "token lost on a rejected reload"
chmod 600 "$T/token"
# No api_token_file: the API is open (and that is a warning).
write_conf debug 0 ""
reload_ok
grep -q "warn  reload: \[agent\] api_token_file removed" "$T/agent.log" ||
    fail "token removal not warned"
[ "$(status "" /api/monitors)" = 200 ] || fail "API still wants a token"
# And back: the key appears with another file.
printf 'third-token\n' >"$T/token3"
chmod 600 "$T/token3"
write_conf debug 0 "api_token_file = token3"
reload_ok
grep -q "API token set from $T/token3" "$T/agent.log" || fail "token set not logged"
[ "$(status "" /api/monitors)" = 401 ] || fail "token not required again"
[ "$(status "Bearer third-token" /api/monitors)" = 200 ] || fail "token3 refused"
[ "$(status "" /healthz)" = 200 ] || fail "/healthz needs no token"
ok "SIGHUP: api_token_file re-read (replaced, unreadable, removed, added)"

# retention_days: a shorter retention runs at once.
[ "$(old_rows)" = 1 ] || fail "retention_days = 0 deleted a row"
write_conf debug 7 "api_token_file = token3"
reload_ok
grep -q "reload: \[agent\] retention_days 0 -> 7" "$T/agent.log" ||
    fail "retention change not logged"
wait_until 10 grep -q "retention: 1 check(s) older than 7 day(s) deleted" "$T/agent.log" ||
    fail "retention_days = 7 not applied"
[ "$(old_rows)" = 0 ] || fail "the old row is still there"
[ "$(sql "$DB" "SELECT count(*) FROM checks")" -gt 0 ] || fail "recent rows deleted"
ok "SIGHUP: retention_days applies at once"

# listen (and database) need a restart: a warning names each key.
api_before=$API
write_conf debug 7 "api_token_file = token3" 127.0.0.1:1
sed -i 's/^database = agent.db/database = other.db/' "$T/agent.ini"
reload_ok
grep -q "warn  reload: \[agent\] listen changed (127.0.0.1:0 -> 127.0.0.1:1); restart to apply" \
    "$T/agent.log" || fail "listen change not warned"
grep -q "warn  reload: \[agent\] database changed ($DB -> $T/other.db); restart to apply" \
    "$T/agent.log" || fail "database change not warned"
[ "$(status "" /healthz)" = 200 ] || fail "API moved or stopped on a listen change"
[ -e "$T/other.db" ] && fail "the new database was opened"
ok "SIGHUP: listen and database changes warn that a restart is needed"

stop_agent
