/*
 * report -- `watchpost report`: uptime, downtime, incidents and latency per
 * monitor from the database, as a table, CSV or JSON (watchpost(8)).
 * Read-only (history.h): it never takes the writer's lock, so it runs
 * beside a running agent as well as without one.
 */
#ifndef CORE_REPORT_H
#define CORE_REPORT_H

/*
 * ARGV[0] is "report".  Exit status: 0 the report was printed, 1 the
 * database could not be read or a named monitor is not in it, 2 bad usage,
 * 3 the configuration file is invalid.
 */
int report_main(int argc, char **argv);

#endif
