/*
 * cfg-read -- the line reader (see cfg-read.h).
 *
 * Debian's libinih cuts lines at 200 bytes and gives the handler no line
 * numbers, and INI_MAX_LINE in our own flags cannot change the shared
 * library.  So inih reads through read_line(), which reads whole physical
 * lines of any length, counts them, strips CR, a UTF-8 BOM, whitespace and
 * comments, and reports the lines inih would reject (inih only returns the
 * first bad line number, without calling the handler).  A key line is handed
 * to inih as a normalised "key=value"; when that does not fit inih's buffer,
 * inih gets a short stand-in and the handler takes the full key and value
 * from the reader.  inih calls the handler right after reading a line, so
 * the reader's line count is the handler's line number.  Section headers are
 * handled by the reader too: inih does not report an empty section.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "cfg-read.h"
#include "util.h"

#define NAME_MAX_LEN CFG_NAME_MAX
#define NAME_RULE "must be 1-128 characters of letters, digits, '.', '_' or '-'"

/* The current section while parsing: an index into secs, or one of these. */
#define CUR_NONE (-1)           /* before any section header */
#define CUR_BAD (-2)            /* after a rejected header: keys are dropped */

struct reader {
	FILE *fp;
	/* read_line(): the physical line and the current key line split. */
	char *buf;
	size_t cap;
	int lineno;
	int read_errno;
	const char *key;
	const char *value;
	int subst;              /* inih got a stand-in for this key line */
	long cur;
	int file;               /* this file's index in raw->files */
	struct cfg_raw *raw;
	struct wp_diag *d;
};

char *
cfg_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = '\0';
	return s;
}

int
cfg_valid_name(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

static size_t
section_hash(int kind, const char *name)
{
	size_t h = 5381 + (size_t)kind;

	while (name != NULL && *name)
		h = h * 33 + (unsigned char)*name++;
	return h;
}

/* The section of KIND named NAME (NULL for [agent]), or NULL. */
const struct cfg_raw_section *
cfg_raw_find(const struct cfg_raw *raw, int kind, const char *name)
{
	size_t mask = raw->by_name_size - 1, b, slot;
	const struct cfg_raw_section *rs;

	if (raw->by_name_size == 0)
		return NULL;
	for (b = section_hash(kind, name) & mask; (slot = raw->by_name[b]) != 0;
	    b = (b + 1) & mask) {
		rs = &raw->secs[slot - 1];
		if (rs->kind == kind && (cfg_single(kind) ||
		    strcmp(rs->name, name) == 0))
			return rs;
	}
	return NULL;
}

static void
section_put(struct cfg_raw *raw, size_t i)
{
	size_t mask = raw->by_name_size - 1, b;

	for (b = section_hash(raw->secs[i].kind, raw->secs[i].name) & mask;
	    raw->by_name[b] != 0; b = (b + 1) & mask)
		;
	raw->by_name[b] = i + 1;
}

/* Add secs[i] to the index, growing it to stay at most half full. */
static void
section_index(struct cfg_raw *raw, size_t i)
{
	size_t j;

	if (raw->n_secs * 2 > raw->by_name_size) {
		free(raw->by_name);
		raw->by_name_size = raw->by_name_size ?
		    raw->by_name_size * 2 : 64;
		raw->by_name = xcalloc(raw->by_name_size, sizeof(size_t));
		for (j = 0; j < raw->n_secs; j++)
			if (j != i)
				section_put(raw, j);
	}
	section_put(raw, i);
}

/* The index of NAME in KINDS (NULL-terminated), -1 if absent. */
static int
kind_index(const char *const *kinds, const char *name)
{
	int k;

	for (k = 0; kinds[k] != NULL; k++)
		if (strcmp(kinds[k], name) == 0)
			return k;
	return -1;
}

static void
section_header(struct reader *ld, char *s)
{
	char *end, *inner, *colon, *name = NULL, buf[QSTR_SIZE + 64];
	const char *kind = NULL, *alt;
	static const char *const kinds[] = { "agent", "monitor", "alert",
	    "status", "maintenance", "cluster", NULL };
	const struct cfg_raw_section *found;
	struct cfg_raw_section *rs;
	struct cfg_raw *raw = ld->raw;
	int k;

	ld->cur = CUR_BAD;
	if ((end = strchr(s, ']')) == NULL) {
		diag_error(ld->d, ld->lineno, "unterminated section header "
		    "(missing ']')");
		return;
	}
	*end = '\0';
	if (cfg_trim(end + 1)[0] != '\0')
		diag_error(ld->d, ld->lineno, "unexpected text after ']': \"%s\"",
		    QSTR(cfg_trim(end + 1)));
	inner = cfg_trim(s + 1);
	if ((colon = strchr(inner, ':')) != NULL) {
		*colon = '\0';
		name = colon + 1;
	}
	kind = inner;
	for (k = 0; kinds[k] != NULL && strcmp(kinds[k], kind) != 0; k++)
		;
	if (kinds[k] == NULL)
		k = -1;
	if (k < 0) {
		alt = keys_suggest(kind, kinds, NULL);
		if (alt != NULL && !cfg_single(kind_index(kinds, alt)) &&
		    name != NULL)
			snprintf(buf, sizeof(buf), " (did you mean [%s:%s]?)",
			    alt, QSTR(name));
		else if (alt != NULL && cfg_single(kind_index(kinds, alt)))
			snprintf(buf, sizeof(buf), " (did you mean [%s]?)", alt);
		else
			buf[0] = '\0';
		diag_error(ld->d, ld->lineno, "unknown section [%s%s%s] (expected "
		    "[agent], [monitor:NAME], [alert:NAME], [status], "
		    "[maintenance:NAME] or [cluster])%s", QSTR(kind),
		    name != NULL ? ":" : "", name != NULL ? QSTR(name) : "",
		    buf);
		return;
	}
	if (cfg_single(k) && name != NULL) {
		diag_error(ld->d, ld->lineno, "[%s] takes no name", kind);
		return;
	}
	if (!cfg_single(k) && name == NULL) {
		diag_error(ld->d, ld->lineno, "section [%s] needs a name: [%s:NAME]",
		    kind, kind);
		return;
	}
	/* A name is a metric label, a log prefix and a key in the API, on
	 * every scrape and line: short and plain. */
	if (!cfg_single(k) && (strlen(name) > NAME_MAX_LEN ||
	    !cfg_valid_name(name, "._-"))) {
		diag_error(ld->d, ld->lineno, "%s name \"%s\": " NAME_RULE, kind,
		    QSTR(name));
		return;
	}
	if (cfg_single(k) && ld->file > 0) {
		diag_error(ld->d, ld->lineno, "[%s] belongs in the main file "
		    "%s, not in an included one", kind, raw->files[0]);
		return;
	}
	if ((found = cfg_raw_find(raw, k, name)) != NULL &&
	    found->file != ld->file) {
		diag_error(ld->d, ld->lineno, "duplicate %s name \"%s\" (first "
		    "defined at %s:%d)", kind, name, raw->files[found->file],
		    found->line);
		return;
	}
	if (found != NULL) {
		if (cfg_single(k))
			diag_error(ld->d, ld->lineno, "duplicate [%s] section "
			    "(first defined at line %d)", kind, found->line);
		else
			diag_error(ld->d, ld->lineno, "duplicate %s name \"%s\" "
			    "(first defined at line %d)", kind, name,
			    found->line);
		return;
	}
	if (raw->n_secs == raw->cap_secs) {
		raw->cap_secs = raw->cap_secs ? raw->cap_secs * 2 : 16;
		raw->secs = xrealloc(raw->secs, raw->cap_secs * sizeof(*rs));
	}
	rs = &raw->secs[raw->n_secs];
	memset(rs, 0, sizeof(*rs));
	rs->kind = k;
	rs->file = ld->file;
	rs->name = cfg_single(k) ? NULL : xstrdup(name);
	rs->line = ld->lineno;
	ld->cur = (long)raw->n_secs++;
	section_index(raw, (size_t)ld->cur);
}

/*
 * inih's reader (fgets-like): reads the next physical line whatever its
 * length and hands inih what it should see in `str` (at most num bytes):
 * an empty line for blanks, comments, section headers and lines reported as
 * malformed here, else "key=value", or a stand-in when that does not fit.
 * Returns NULL at the end of the file or on a read error (read_errno).
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct reader *ld = stream;
	ssize_t n;
	char *s, *e, *sep, *key, *value, c;
	size_t klen, vlen;

	ld->subst = 0;
	ld->key = ld->value = NULL;
	errno = 0;
	n = getline(&ld->buf, &ld->cap, ld->fp);
	if (n < 0) {
		if (ferror(ld->fp))
			ld->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	str[0] = '\0';
	s = ld->buf;
	e = s + n;
	if (memchr(s, '\0', (size_t)n) != NULL) {
		diag_error(ld->d, ld->lineno, "line contains a NUL byte");
		return str;
	}
	if (e > s && e[-1] == '\n')
		e--;
	if (e > s && e[-1] == '\r')
		e--;
	*e = '\0';
	if (ld->lineno == 1 && (unsigned char)s[0] == 0xef &&
	    (unsigned char)s[1] == 0xbb && (unsigned char)s[2] == 0xbf)
		s += 3;
	s = cfg_trim(s);
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	/* An inline comment is ';' after whitespace, as inih has it. */
	for (e = s + 1; *e != '\0'; e++) {
		if (*e == ';' && isspace((unsigned char)e[-1])) {
			*e = '\0';
			break;
		}
	}
	s = cfg_trim(s);
	if (*s == '[') {
		section_header(ld, s);
		return str;
	}
	if ((sep = strpbrk(s, "=:")) == NULL) {
		diag_error(ld->d, ld->lineno, "expected \"key = value\", a [section] "
		    "or a comment, not \"%s\"", QSTR(s));
		return str;
	}
	c = *sep;
	*sep = '\0';
	key = cfg_trim(s);
	value = cfg_trim(sep + 1);
	if (*key == '\0') {
		diag_error(ld->d, ld->lineno, "missing key name before '%c'", c);
		return str;
	}
	ld->key = key;
	ld->value = value;
	klen = strlen(key);
	vlen = strlen(value);
	/* inih needs room for the line plus "\r\n\0" (see ini.h).  Key
	 * and value are in ld->buf, not STR; copied without snprintf(),
	 * which was a third of the reading (issue 17, S8). */
	if (num > 0 && klen + vlen + 4 <= (size_t)num) {
		memcpy(str, key, klen);
		str[klen] = '=';
		memcpy(str + klen + 1, value, vlen);
		str[klen + 1 + vlen] = '\0';
	} else {
		ld->subst = 1;
		snprintf(str, (size_t)num, "%s", "k=v");
	}
	return str;
}

/* inih's handler: one key of the current section.  Always returns 1: every
 * problem is recorded in the loader, so inih's own error count is unused. */
static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct reader *ld = user;
	struct cfg_raw_section *rs;
	struct cfg_kv *kv;
	size_t nl, vl;
	char *p;

	(void)section;
	if (ld->subst) {
		name = ld->key;
		value = ld->value;
	}
	if (ld->cur == CUR_BAD)
		return 1;
	if (ld->cur == CUR_NONE) {
		diag_error(ld->d, ld->lineno, "key \"%s\" is outside any section "
		    "(put it under [agent], [monitor:NAME] or [alert:NAME])",
		    QSTR(name));
		return 1;
	}
	rs = &ld->raw->secs[ld->cur];
	/* Room doubles at 4, 8, 16...: a realloc per line was a tenth of
	 * the reading. */
	if (rs->n_kv == 0 || (rs->n_kv >= 4 &&
	    (rs->n_kv & (rs->n_kv - 1)) == 0))
		rs->kv = xrealloc(rs->kv, (rs->n_kv ? rs->n_kv * 2 : 4) *
		    sizeof(*kv));
	kv = &rs->kv[rs->n_kv++];
	/* Key and value in one block, the key first (cfg_raw_free()). */
	nl = strlen(name) + 1;
	vl = strlen(value) + 1;
	kv->key = p = xmalloc(nl + vl);
	memcpy(p, name, nl);
	kv->value = memcpy(p + nl, value, vl);
	kv->line = ld->lineno;
	return 1;
}


int
cfg_read(const char *file, struct cfg_raw *raw, struct wp_diag *d)
{
	return cfg_read_from(file, file, raw, d);
}

int
cfg_read_from(const char *file, const char *path, struct cfg_raw *raw,
    struct wp_diag *d)
{
	struct reader rd;
	int rc, ret = WP_EINVAL;

	memset(&rd, 0, sizeof(rd));
	rd.cur = CUR_NONE;
	rd.raw = raw;
	rd.d = d;
	raw->files = xrealloc(raw->files, (raw->n_files + 1) *
	    sizeof(*raw->files));
	rd.file = (int)raw->n_files;
	raw->files[raw->n_files++] = xstrdup(file);
	if ((rd.fp = fopen(path, "r")) == NULL) {
		diag_error(d, 0, "cannot open: %s", strerror(errno));
		goto done;
	}
	rc = ini_parse_stream(read_line, &rd, on_key, &rd);
	fclose(rd.fp);
	if (rd.read_errno != 0) {
		diag_error(d, 0, "cannot read: %s", strerror(rd.read_errno));
		goto done;
	}
	if (rc == -2)
		diag_error(d, 0, "out of memory while parsing");
	else if (rc > 0 && !diag_has_line(d, rc))
		diag_error(d, rc, "cannot parse this line");
	ret = 0;
done:
	free(rd.buf);
	return ret;
}

void
cfg_raw_drop_kv(struct cfg_raw *raw, size_t i)
{
	struct cfg_raw_section *rs = &raw->secs[i];
	size_t j;

	for (j = 0; j < rs->n_kv; j++)
		free((char *)rs->kv[j].key); /* and value */
	free(rs->kv);
	rs->kv = NULL;
	rs->n_kv = 0;
}

void
cfg_raw_free(struct cfg_raw *raw)
{
	size_t i, j;

	for (i = 0; i < raw->n_secs; i++) {
		for (j = 0; j < raw->secs[i].n_kv; j++)
			free((char *)raw->secs[i].kv[j].key); /* and value */
		free(raw->secs[i].kv);
		free(raw->secs[i].name);
	}
	free(raw->secs);
	free(raw->by_name);
	for (i = 0; i < raw->n_files; i++)
		free(raw->files[i]);
	free(raw->files);
	memset(raw, 0, sizeof(*raw));
}
