#!/bin/bash
# A SIGHUP's file is read off the loop (issue 17, S8): SIGHUPs in a row
# end with the last file applied (one that arrives during a read reads
# again after it), the loop keeps checking while a large file is read, and
# a stop during a read exits cleanly.  A reload that changes one monitor
# keeps the others as they run: the read copies their sections from the
# running file (config_load_prev()), the apply finds them unchanged, and
# none of them is checked again for the reload (no repeat) nor loses its
# place (the unchanged 200 ms monitor goes on being checked).
. "$abs_top_srcdir/tests/lib.sh"

DB="$T/agent.db"
# N monitors of a refused loopback port: a file large enough that its read
# takes a while, whose checks are cheap.
write_conf() { # write_conf NAME_OF_THE_EXTRA_MONITOR [PORT_OF_m7]
	{
		printf '[agent]\ndatabase = agent.db\nlisten = 127.0.0.1:0\n\n'
		awk -v p7="${2:-1}" 'BEGIN { for (i = 1; i <= 3000; i++)
			printf "[monitor:m%d]\ntype = tcp\nhost = 127.0.0.1\n" \
			    "port = %d\ninterval = 1h\nretries = 0\n\n", i,
			    i == 7 ? p7 : 1 }'
		printf '[monitor:%s]\ntype = tcp\nhost = 127.0.0.1\nport = 1\n' "$1"
		printf 'interval = 200ms\nretries = 0\n'
	} >"$T/agent.ini.new"
	mv "$T/agent.ini.new" "$T/agent.ini"
}
write_conf first
start_agent "$T/agent.ini"
wait_until 30 grep -q " started: " "$T/agent.log" || fail "the agent did not start"
running() { curl -fsS "$API/api/monitors/$1" >/dev/null 2>&1; }
wait_until 10 running first || fail "monitor first is not running"

# Three files, a SIGHUP after each, without waiting: the last one wins.
for name in second third fourth; do
	write_conf "$name"
	kill -HUP "$AGENT_PID"
done
wait_until 30 running fourth || fail "the last file's monitor never ran"
checks() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = 'fourth'"; }
wait_until 15 at_least 3 checks || fail "fourth is not checked"
running first && fail "first still runs after the reloads"
ok "SIGHUPs in a row: the last file is applied"

# One monitor of 3,001 changed: the other 3,000 run on untouched.
checks_of() { sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name = '$1'"; }
wait_until 30 at_least 3000 sql "$DB" "SELECT count(DISTINCT monitor_id) FROM checks" ||
	fail "the 1h monitors did not all run once"
before=$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name LIKE 'm%'")
[ "$before" = 3000 ] || fail "the 1h monitors ran $before times, not 3000"
n4=$(checks_of fourth)
applied=$(grep -c "configuration applied" "$T/agent.log")
write_conf fourth 2
kill -HUP "$AGENT_PID"
wait_until 30 at_least $((applied + 1)) grep -c "configuration applied" "$T/agent.log" ||
	fail "the one-monitor change was not applied"
grep "configuration applied" "$T/agent.log" | tail -1 |
	grep -q "0 added, 1 changed, 0 removed, 3000 unchanged" ||
	fail "not one changed and 3000 unchanged: $(grep "configuration applied" "$T/agent.log" | tail -1)"
wait_until 15 at_least 2 checks_of m7 || fail "the changed m7 was not checked again"
wait_until 15 at_least $((n4 + 3)) checks_of fourth ||
	fail "the unchanged 200 ms monitor stopped being checked"
after=$(sql "$DB" "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.name LIKE 'm%'")
[ "$after" = 3001 ] || fail "after the reload the 1h monitors ran $after times, not 3001 (m7 twice, the others once)"
ok "a reload of one changed monitor: 3000 unchanged, none checked again"

# A stop right after a SIGHUP, the read in flight: a clean exit.
write_conf fifth
kill -HUP "$AGENT_PID"
stop_agent
grep -q "^.* stopped$" "$T/agent.log" || fail "no clean stop"
ok "a stop during a reload's read exits cleanly"
