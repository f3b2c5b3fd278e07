/*
 * diag -- the one collector of configuration diagnostics: "FILE:LINE:
 * message" lines, counted.  An error makes the file invalid; a warning
 * ("FILE:LINE: warning: message") is only shown: -t still exits 0.  Every
 * message is escaped and cut at 400 characters here, so no line holds raw
 * control bytes.  The reader, the key parser, the validation and the
 * plugins' configure() (through host->config_error) all report here.
 */
#ifndef CORE_DIAG_H
#define CORE_DIAG_H

#include <stdarg.h>
#include <stddef.h>

#include <watchpost/plugin.h>

struct wp_diag {
	const char *file;   /* default file for diag_error (borrowed) */
	int errors;         /* number of errors reported */
	int warnings;       /* number of warnings reported */
	char *text;         /* all lines, each ending in '\n' (owned, may be NULL) */
	size_t len;
	struct diag_at {    /* per line: its line number, where its text starts */
		int line;
		size_t off;
		int rank;   /* d->rank when it was reported */
	} *at;              /* errors + warnings entries (owned, may be NULL) */
	/* Which file of a configuration d->file is (0: the main file, then
	 * the included ones in the order read): diag_sort() keeps files in
	 * this order, lines in order within each.  Set with d->file. */
	int rank;
};
void diag_init(struct wp_diag *d, const char *file);
/* Report an error at LINE of d->file (line 0: no line, "FILE: message"). */
void diag_error(struct wp_diag *d, int line, const char *fmt, ...)
    WP_PRINTF(3, 4);
void diag_verror(struct wp_diag *d, int line, const char *fmt, va_list ap);
/* Report a warning the same way: "FILE:LINE: warning: message". */
void diag_warning(struct wp_diag *d, int line, const char *fmt, ...)
    WP_PRINTF(3, 4);
/* Is anything reported at LINE (of the file of d->rank)? */
int diag_has_line(const struct wp_diag *d, int line);
/* Put the lines in file (rank) and line order (line 0 first), keeping the
 * report order among equal lines: for a report collected in more than one
 * pass. */
void diag_sort(struct wp_diag *d);
/* Append every line of SRC to DST (counts included) and empty SRC. */
void diag_move(struct wp_diag *dst, struct wp_diag *src);
void diag_free(struct wp_diag *d);

#endif
