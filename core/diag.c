/*
 * diag -- the diagnostics collector (see diag.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "util.h"

#define DIAG_MSG_CHARS 400 /* a diagnostic's message, at most */

void
diag_init(struct wp_diag *d, const char *file)
{
	memset(d, 0, sizeof(*d));
	d->file = file;
}

/* One line of either severity; TAG is "" or "warning: ". */
static void
diag_add(struct wp_diag *d, int line, const char *tag, const char *fmt,
    va_list ap)
{
	struct sbuf b;
	char *raw, msg[DIAG_MSG_CHARS * 4 + 4];
	const char *file = d->file != NULL ? d->file : "(configuration)";
	size_t n = (size_t)d->errors + (size_t)d->warnings;

	if (vasprintf(&raw, fmt, ap) < 0) {
		fputs("watchpost: out of memory\n", stderr);
		abort();
	}
	/* The core quotes what it echoes (QSTR); a plugin's message is
	 * bounded and escaped here, so no line holds raw bytes. */
	str_escape(raw, DIAG_MSG_CHARS, msg, sizeof(msg));
	free(raw);
	d->at = xrealloc(d->at, (n + 1) * sizeof(*d->at));
	d->at[n].line = line;
	d->at[n].off = d->len;
	d->at[n].rank = d->rank;
	/* Adopt the text as a buffer whose capacity is exactly what it holds. */
	b.data = d->text;
	b.len = d->len;
	b.cap = d->text != NULL ? d->len + 1 : 0;
	if (line > 0)
		sbuf_printf(&b, "%s:%d: %s%s\n", file, line, tag, msg);
	else
		sbuf_printf(&b, "%s: %s%s\n", file, tag, msg);
	d->text = b.data;
	d->len = b.len;
}

void
diag_verror(struct wp_diag *d, int line, const char *fmt, va_list ap)
{
	diag_add(d, line, "", fmt, ap);
	d->errors++;
}

void
diag_error(struct wp_diag *d, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_verror(d, line, fmt, ap);
	va_end(ap);
}

void
diag_warning(struct wp_diag *d, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(d, line, "warning: ", fmt, ap);
	va_end(ap);
	d->warnings++;
}

/* An entry of diag_sort(): where a line's text is and how long it is. */
struct diag_piece {
	int rank, line;
	size_t off, len;
};

/* Line order; the offsets, which follow the report order, break ties. */
static int
diag_piece_cmp(const void *a, const void *b)
{
	const struct diag_piece *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

void
diag_sort(struct wp_diag *d)
{
	struct diag_piece *p;
	char *text;
	size_t i, n = (size_t)d->errors + (size_t)d->warnings, off = 0;

	if (n < 2)
		return;
	/* d->at is in text order: an entry runs to the next one's start. */
	p = xmalloc(n * sizeof(*p));
	for (i = 0; i < n; i++) {
		p[i].rank = d->at[i].rank;
		p[i].line = d->at[i].line;
		p[i].off = d->at[i].off;
		p[i].len = (i + 1 < n ? d->at[i + 1].off : d->len) - p[i].off;
	}
	qsort(p, n, sizeof(*p), diag_piece_cmp);
	text = xmalloc(d->len + 1);
	for (i = 0; i < n; i++) {
		memcpy(text + off, d->text + p[i].off, p[i].len);
		d->at[i].line = p[i].line;
		d->at[i].rank = p[i].rank;
		d->at[i].off = off;
		off += p[i].len;
	}
	text[off] = '\0';
	free(d->text);
	d->text = text;
	free(p);
}

void
diag_free(struct wp_diag *d)
{
	if (d == NULL)
		return;
	free(d->text);
	free(d->at);
	d->text = NULL;
	d->at = NULL;
	d->len = 0;
	d->errors = 0;
	d->warnings = 0;
}

int
diag_has_line(const struct wp_diag *d, int line)
{
	size_t i, n = (size_t)d->errors + (size_t)d->warnings;

	for (i = 0; i < n; i++)
		if (d->at[i].line == line && d->at[i].rank == d->rank)
			return 1;
	return 0;
}

void
diag_move(struct wp_diag *dst, struct wp_diag *src)
{
	size_t i, n = (size_t)src->errors + (size_t)src->warnings;
	size_t m = (size_t)dst->errors + (size_t)dst->warnings;
	struct sbuf b;

	if (n == 0)
		goto done;
	dst->at = xrealloc(dst->at, (m + n) * sizeof(*dst->at));
	for (i = 0; i < n; i++) {
		dst->at[m + i].line = src->at[i].line;
		dst->at[m + i].rank = src->at[i].rank;
		dst->at[m + i].off = dst->len + src->at[i].off;
	}
	b.data = dst->text;
	b.len = dst->len;
	b.cap = dst->text != NULL ? dst->len + 1 : 0;
	sbuf_append(&b, src->text, src->len);
	dst->text = b.data;
	dst->len = b.len;
	dst->errors += src->errors;
	dst->warnings += src->warnings;
done:
	diag_free(src);
}
