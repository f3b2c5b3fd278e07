/*
 * perfdata -- a Nagios plugin's output: the detail line and the
 * performance data, as measurements.  Untrusted input (any bytes, NULs
 * included); fuzzed by tests/fuzz/fuzz-perfdata.c.
 *
 * The output is read as the Nagios plugin API describes it:
 *
 *   TEXT | PERFDATA
 *   LONG TEXT LINE
 *   ...
 *   LONG TEXT LINE | PERFDATA
 *   PERFDATA
 *
 * The first line's text (before '|') is the detail.  Perfdata follow the
 * first line's '|', and the first later line's '|' together with every
 * line after it.  An item is 'label'=value[UOM];warn;crit;min;max
 * (quotes only needed for a label with blanks, '' for a quote in one);
 * warn, crit, min and max are ignored.  Each item becomes a measurement:
 *
 *   name   the label in lower case, each run of other characters than
 *          [a-z0-9] as one '_', no '_' at either end, "m_" before a
 *          leading digit, at most 48 bytes; "/" (check_disk's root) is
 *          "root", any other label with nothing left is "value"; a name
 *          already taken gets "_2" ... "_9"
 *   unit   s, ms, us: seconds (the value scaled); %: a ratio (value /
 *          100); B, KB, MB, GB, TB: bytes (powers of 1024, as the
 *          monitoring plugins count); c, none or any other: no unit, the
 *          number as given
 *
 * Items that do not parse, whose value is 'U' (unknown) or not finite,
 * or beyond WP_MEASUREMENTS_MAX, are counted in `skipped`.
 */
#ifndef PLUGINS_PERFDATA_H
#define PLUGINS_PERFDATA_H

#include <stddef.h>

#include <watchpost/plugin.h>

#define PERF_NAME_MAX 48

struct nagios_out {
	char detail[WP_DETAIL_MAX];   /* first line's text, blanks and control
	                               * bytes trimmed at both ends, control
	                               * bytes inside as ' ' */
	struct wp_measurement m[WP_MEASUREMENTS_MAX]; /* names point into
	                               * `names` */
	char names[WP_MEASUREMENTS_MAX][PERF_NAME_MAX + 1];
	size_t n;                     /* measurements in m */
	size_t skipped;               /* perfdata items not kept */
};

/* Parse LEN bytes of OUT into *O (overwritten whole).  Never fails. */
void nagios_parse(const char *out, size_t len, struct nagios_out *o);

#endif
