#!/bin/bash
# A SIGHUP's file is read off the loop (issue 17, S8): SIGHUPs in a row
# end with the last file applied (one that arrives during a read reads
# again after it), the loop keeps checking while a large file is read, and
# a stop during a read exits cleanly.
. "$abs_top_srcdir/tests/lib.sh"

DB="$T/agent.db"
# N monitors of a refused loopback port: a file large enough that its read
# takes a while, whose checks are cheap.
write_conf() { # write_conf NAME_OF_THE_EXTRA_MONITOR
	{
		printf '[agent]\ndatabase = agent.db\nlisten = 127.0.0.1:0\n\n'
		awk 'BEGIN { for (i = 1; i <= 3000; i++)
			printf "[monitor:m%d]\ntype = tcp\nhost = 127.0.0.1\n" \
			    "port = 1\ninterval = 1h\nretries = 0\n\n", i }'
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

# A stop right after a SIGHUP, the read in flight: a clean exit.
write_conf fifth
kill -HUP "$AGENT_PID"
stop_agent
grep -q "^.* stopped$" "$T/agent.log" || fail "no clean stop"
ok "a stop during a reload's read exits cleanly"
