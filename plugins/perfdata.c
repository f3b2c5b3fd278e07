/*
 * perfdata.c -- Nagios plugin output and performance data (perfdata.h).
 *
 * Everything works on (pointer, length) spans of the caller's bytes: no
 * NUL is assumed anywhere, nothing is allocated.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perfdata.h"

struct span {
	const char *p;
	size_t n;
};

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The first line's text: blanks trimmed, control bytes as spaces. */
static void
set_detail(struct nagios_out *o, struct span t)
{
	size_t i, k = 0;

	/* Blanks and control bytes at either end go. */
	while (t.n > 0 && (unsigned char)t.p[0] <= 0x20) {
		t.p++;
		t.n--;
	}
	while (t.n > 0 && (unsigned char)t.p[t.n - 1] <= 0x20)
		t.n--;
	for (i = 0; i < t.n && k < sizeof(o->detail) - 1; i++) {
		unsigned char c = (unsigned char)t.p[i];
		o->detail[k++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	o->detail[k] = '\0';
}

/* LABEL as a measurement name into BUF (PERF_NAME_MAX + 1 bytes). */
static void
sanitize(struct span label, char *buf)
{
	size_t i, k = 0;
	int sep = 0;

	if (label.n == 1 && label.p[0] == '/') {
		strcpy(buf, "root");
		return;
	}
	for (i = 0; i < label.n && k < PERF_NAME_MAX; i++) {
		char c = lower(label.p[i]);
		if (!is_alnum(c)) {
			sep = k > 0;
			continue;
		}
		if (sep && k < PERF_NAME_MAX - 1)
			buf[k++] = '_';
		sep = 0;
		if (k == 0 && c >= '0' && c <= '9') {
			buf[k++] = 'm';
			buf[k++] = '_';
		}
		if (k < PERF_NAME_MAX)
			buf[k++] = c;
	}
	while (k > 0 && buf[k - 1] == '_')
		k--;
	buf[k] = '\0';
	if (k == 0)
		strcpy(buf, "value");
}

/* Make NAME unique among O's names: as is, or with "_2" ... "_9"
 * (the base cut to fit).  0 when all are taken. */
static int
unique(const struct nagios_out *o, char *name)
{
	char base[PERF_NAME_MAX + 1];
	size_t i, len;
	int k, taken;

	memcpy(base, name, sizeof(base));
	for (k = 1; k <= 9; k++) {
		if (k > 1) {
			len = strlen(base);
			if (len > PERF_NAME_MAX - 2)
				len = PERF_NAME_MAX - 2;
			memcpy(name, base, len);
			snprintf(name + len, 3, "_%d", k);
		}
		taken = 0;
		for (i = 0; i < o->n && !taken; i++)
			taken = strcmp(o->names[i], name) == 0;
		if (!taken)
			return 1;
	}
	return 0;
}

/* UOM's unit and factor; unknown ones are plain numbers. */
static int
uom(struct span u, double *factor)
{
	static const struct {
		const char *s;
		int unit;
		double f;
	} t[] = {
		{ "s", WP_UNIT_SECONDS, 1 }, { "ms", WP_UNIT_SECONDS, 1e-3 },
		{ "us", WP_UNIT_SECONDS, 1e-6 }, { "%", WP_UNIT_RATIO, 0.01 },
		{ "B", WP_UNIT_BYTES, 1 }, { "KB", WP_UNIT_BYTES, 1024.0 },
		{ "MB", WP_UNIT_BYTES, 1048576.0 },
		{ "GB", WP_UNIT_BYTES, 1073741824.0 },
		{ "TB", WP_UNIT_BYTES, 1099511627776.0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].s) == u.n && memcmp(t[i].s, u.p, u.n) == 0) {
			*factor = t[i].f;
			return t[i].unit;
		}
	*factor = 1;
	return WP_UNIT_NONE;
}

/*
 * A number at the start of S: [-+]digits[.digits][e[-+]digits], at least
 * one digit.  Its length, or 0.  *V gets its value.
 */
static size_t
number(struct span s, double *v)
{
	char buf[64];
	size_t i = 0, digits = 0;

	if (i < s.n && (s.p[i] == '-' || s.p[i] == '+'))
		i++;
	while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
		i++;
		digits++;
	}
	if (i < s.n && (s.p[i] == '.' || s.p[i] == ',')) {
		i++;
		while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
			i++;
			digits++;
		}
	}
	if (digits == 0)
		return 0;
	if (i + 1 < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
		size_t j = i + 1;
		if (j < s.n && (s.p[j] == '-' || s.p[j] == '+'))
			j++;
		if (j < s.n && s.p[j] >= '0' && s.p[j] <= '9') {
			while (j < s.n && s.p[j] >= '0' && s.p[j] <= '9')
				j++;
			i = j;
		}
	}
	if (i >= sizeof(buf))
		return 0;
	memcpy(buf, s.p, i);
	buf[i] = '\0';
	/* Some plugins print a decimal comma under their locale. */
	for (digits = 0; digits < i; digits++)
		if (buf[digits] == ',')
			buf[digits] = '.';
	*v = strtod(buf, NULL);
	return i;
}

/* Add item LABEL = VALUE-with-UOM (REST: "value[UOM][;...]"). */
static void
add_item(struct nagios_out *o, struct span label, struct span rest)
{
	struct span u;
	double v = 0, f;
	size_t len, end;
	int unit;

	len = number(rest, &v);
	if (len == 0) { /* 'U', or garbage */
		o->skipped++;
		return;
	}
	for (end = len; end < rest.n && rest.p[end] != ';'; end++)
		;
	u.p = rest.p + len;
	u.n = end - len;
	unit = uom(u, &f);
	v *= f;
	if (!isfinite(v) || o->n == WP_MEASUREMENTS_MAX) {
		o->skipped++;
		return;
	}
	sanitize(label, o->names[o->n]);
	if (!unique(o, o->names[o->n])) {
		o->skipped++;
		return;
	}
	o->m[o->n].name = o->names[o->n];
	o->m[o->n].value = v;
	o->m[o->n].unit = unit;
	o->n++;
}

/* Every item of perfdata text S. */
static void
parse_perf(struct nagios_out *o, struct span s)
{
	size_t i = 0, start, lab_end;
	struct span label, rest;
	int quoted, ok;

	while (i < s.n) {
		while (i < s.n && (is_blank(s.p[i]) || s.p[i] == '\n'))
			i++;
		if (i >= s.n)
			break;
		ok = 1;
		quoted = s.p[i] == '\'';
		if (quoted) {
			/* 'label' with '' for a quote; the name only needs
			 * its letters, so the pair needs no unescaping. */
			start = ++i;
			while (i < s.n) {
				if (s.p[i] == '\'' && i + 1 < s.n &&
				    s.p[i + 1] == '\'') {
					i += 2;
					continue;
				}
				if (s.p[i] == '\'')
					break;
				i++;
			}
			lab_end = i;
			if (i < s.n)
				i++; /* the closing quote */
			if (i >= s.n || s.p[i] != '=')
				ok = 0;
		} else {
			start = i;
			while (i < s.n && s.p[i] != '=' && !is_blank(s.p[i]) &&
			    s.p[i] != '\n')
				i++;
			lab_end = i;
			if (i >= s.n || s.p[i] != '=' || lab_end == start)
				ok = 0;
		}
		label.p = s.p + start;
		label.n = lab_end - start;
		if (ok)
			i++; /* '=' */
		rest.p = s.p + i;
		while (i < s.n && !is_blank(s.p[i]) && s.p[i] != '\n')
			i++;
		rest.n = (size_t)(s.p + i - rest.p);
		if (ok)
			add_item(o, label, rest);
		else
			o->skipped++;
	}
}

void
nagios_parse(const char *out, size_t len, struct nagios_out *o)
{
	const char *end, *nl, *bar;
	struct span line, text, perf;
	int first = 1;

	memset(o, 0, sizeof(*o));
	if (out == NULL)
		return;
	end = out + len;
	while (out < end) {
		nl = memchr(out, '\n', (size_t)(end - out));
		line.p = out;
		line.n = (size_t)((nl != NULL ? nl : end) - out);
		bar = memchr(line.p, '|', line.n);
		if (first) {
			text.p = line.p;
			text.n = bar != NULL ? (size_t)(bar - line.p) : line.n;
			set_detail(o, text);
		}
		if (bar != NULL) {
			perf.p = bar + 1;
			/* The first line's '|' covers that line; a later
			 * line's, the rest of the output. */
			perf.n = (size_t)((first ? line.p + line.n : end) -
			    perf.p);
			parse_perf(o, perf);
			if (!first)
				return;
		}
		first = 0;
		out = nl != NULL ? nl + 1 : end;
	}
}
