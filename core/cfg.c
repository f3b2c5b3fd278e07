/*
 * cfg -- read the INI file with the system inih and validate it.
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
 *
 * Loading then has two phases: the parse collects the raw sections (kind,
 * name, key/value/line in file order); validation checks them once the whole
 * file is known (alert references may point forward, and [agent] plugin_dir,
 * which may come last, decides where plugins are looked up).  Problems are
 * collected with their line and handed to the caller's diagnostics sorted by
 * line.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cfg.h"
#include "log.h"
#include "util.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/watchpost"
#endif

#define DEFAULT_DATABASE "watchpost.db"
#define DEFAULT_LISTEN "127.0.0.1:9405"
#define DURATION_FORMS "use e.g. 250ms, 10s, 5m, 1h"
#define NAME_MAX_LEN 128 /* a [monitor:] or [alert:] name, bytes */
#define NAME_RULE "must be 1-128 characters of letters, digits, '.', '_' or '-'"
#define DIAG_MSG_CHARS 400 /* a diagnostic's message, at most */
/* The longest interval, and the longest timeout and retry_interval: past
 * them a value is a typo.  (Whatever the timeout, a shutdown waits no
 * longer than main.c's drain limit.) */
#define INTERVAL_MAX_MS (7LL * 86400000)
#define TIMEOUT_MAX_MS 3600000LL
#define SECRET_MAX (64 * 1024) /* bytes in a K_file file */
#define FILE_SUFFIX "_file"

/* ------------------------------------------------------------------------ */
/* Loader state */

enum sec_kind { SEC_AGENT, SEC_MONITOR, SEC_ALERT };

static const char *const kind_names[] = { "agent", "monitor", "alert" };

struct raw_kv {
	char *key;
	char *value;
	int line;
};

/* One section as written, before validation. */
struct raw_section {
	int kind;               /* enum sec_kind */
	char *name;             /* NULL for [agent] */
	int line;
	struct raw_kv *kv;
	size_t n_kv;
};

struct problem {
	int line;
	size_t seq;             /* keeps the report order within a line */
	int warning;            /* 1: only a warning */
	char *msg;
};

/* The current section while parsing: an index into secs, or one of these. */
#define CUR_NONE (-1)           /* before any section header */
#define CUR_BAD (-2)            /* after a rejected header: keys are dropped */

struct plugin_cache {
	int kind;
	char *type;
	const struct wp_plugin *plugin;
	char *why;
};

struct loader {
	FILE *fp;
	/* read_line(): the physical line and the current key line split. */
	char *buf;
	size_t cap;
	int lineno;
	int read_errno;
	const char *key;
	const char *value;
	int subst;              /* inih got a stand-in for this key line */

	struct raw_section *secs;
	size_t n_secs, cap_secs;
	long cur;
	/* Open-addressed index of secs by (kind, name): slot = index + 1,
	 * 0 empty.  Keeps the duplicate-name check linear in the file (with
	 * 10,000 sections a scan per header was most of the start-up). */
	size_t *by_name;
	size_t by_name_size;    /* a power of two, or 0 */

	struct problem *probs;
	size_t n_probs;
	size_t n_warnings;      /* of n_probs */

	cfg_lookup_fn lookup;
	void *lookup_arg;
	const char *dir;        /* the configuration's folder (for K_file) */
	struct plugin_cache *cache;
	size_t n_cache;
};

static void report(struct loader *ld, int line, const char *fmt, ...)
    WP_PRINTF(3, 4);
static void warn_at(struct loader *ld, int line, const char *fmt, ...)
    WP_PRINTF(3, 4);

static void
add_problem(struct loader *ld, int line, int warning, const char *fmt,
    va_list ap)
{
	struct problem *p;

	ld->probs = wp_xrealloc(ld->probs, (ld->n_probs + 1) * sizeof(*p));
	p = &ld->probs[ld->n_probs];
	p->line = line;
	p->seq = ld->n_probs++;
	p->warning = warning;
	ld->n_warnings += warning != 0;
	if (vasprintf(&p->msg, fmt, ap) < 0) {
		fputs("watchpost: out of memory\n", stderr);
		abort();
	}
}

/* Record a problem at LINE (0: the file as a whole). */
static void
report(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_problem(ld, line, 0, fmt, ap);
	va_end(ap);
}

/* Record a warning at LINE: shown, but the file stays valid. */
static void
warn_at(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_problem(ld, line, 1, fmt, ap);
	va_end(ap);
}

static int
has_problem_at(const struct loader *ld, int line)
{
	size_t i;

	for (i = 0; i < ld->n_probs; i++)
		if (ld->probs[i].line == line)
			return 1;
	return 0;
}

static int
problem_cmp(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
loader_free(struct loader *ld)
{
	size_t i, j;

	free(ld->buf);
	for (i = 0; i < ld->n_secs; i++) {
		for (j = 0; j < ld->secs[i].n_kv; j++) {
			free(ld->secs[i].kv[j].key);
			free(ld->secs[i].kv[j].value);
		}
		free(ld->secs[i].kv);
		free(ld->secs[i].name);
	}
	free(ld->secs);
	free(ld->by_name);
	for (i = 0; i < ld->n_probs; i++)
		free(ld->probs[i].msg);
	free(ld->probs);
	for (i = 0; i < ld->n_cache; i++) {
		free(ld->cache[i].type);
		free(ld->cache[i].why);
	}
	free(ld->cache);
}

/* ------------------------------------------------------------------------ */
/* Small helpers */

static char *
trim(char *s)
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

/* A name of [A-Za-z0-9] plus the characters in `extra`, non-empty. */
static int
valid_name(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

/*
 * The closest of `cands` (two NULL-terminated lists, either may be NULL) to
 * `key`: within edit distance 2, equal but for case, or a prefix either way
 * of at least 3 characters.  Returns NULL when nothing is close.
 */
static const char *
suggest(const char *key, const char *const *a, const char *const *b)
{
	const char *const *lists[2] = { a, b };
	const char *best = NULL;
	int bestd = INT_MAX, d, l;
	size_t kl = strlen(key), cl;

	for (l = 0; l < 2; l++) {
		const char *const *c;
		for (c = lists[l]; c != NULL && *c != NULL; c++) {
			cl = strlen(*c);
			if (strcasecmp(key, *c) == 0)
				d = 0;
			else if ((d = wp_edit_distance(key, *c)) > 2 &&
			    !(kl >= 3 && cl >= 3 &&
			    strncmp(key, *c, kl < cl ? kl : cl) == 0))
				continue;
			if (d < bestd) {
				bestd = d;
				best = *c;
			}
		}
	}
	return best;
}

/* " (did you mean "x"?)" or "", for appending to a message. */
static const char *
mean_text(const char *s, char *buf, size_t len)
{
	if (s == NULL)
		return "";
	snprintf(buf, len, " (did you mean \"%s\"?)", s);
	return buf;
}

static int
find_key(const char *const *keys, const char *key)
{
	int i;

	for (i = 0; keys[i] != NULL; i++)
		if (strcmp(keys[i], key) == 0)
			return i;
	return -1;
}

/* An absolute path for `value`: itself, or joined to `dir`. */
static char *
resolve_path(const char *dir, const char *value)
{
	size_t dl = strlen(dir);

	if (value[0] == '/')
		return wp_xstrdup(value);
	if (dl > 0 && dir[dl - 1] == '/')
		return wp_xasprintf("%s%s", dir, value);
	return wp_xasprintf("%s/%s", dir, value);
}

static char *
current_dir(void)
{
	char *cwd = getcwd(NULL, 0);

	/* Without a current directory "/" is the only absolute answer. */
	return cwd != NULL ? cwd : wp_xstrdup("/");
}

/* The absolute folder of `file` (which has been opened). */
static char *
file_dir(const char *file)
{
	char *d = wp_xstrdup(file), *slash, *real, *cwd, *abs;

	slash = strrchr(d, '/');
	if (slash == NULL) {
		free(d);
		d = wp_xstrdup(".");
	} else if (slash == d)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((real = realpath(d, NULL)) != NULL) {
		free(d);
		return real;
	}
	if (d[0] == '/')
		return d;
	cwd = current_dir();
	abs = resolve_path(cwd, d);
	free(cwd);
	free(d);
	return abs;
}

/* ------------------------------------------------------------------------ */
/* Parsing: the reader and the handler inih calls */

static size_t
section_hash(int kind, const char *name)
{
	size_t h = 5381 + (size_t)kind;

	while (name != NULL && *name)
		h = h * 33 + (unsigned char)*name++;
	return h;
}

/* The section of KIND named NAME (NULL for [agent]), or NULL. */
static struct raw_section *
section_find(const struct loader *ld, int kind, const char *name)
{
	size_t mask = ld->by_name_size - 1, b, slot;
	struct raw_section *rs;

	if (ld->by_name_size == 0)
		return NULL;
	for (b = section_hash(kind, name) & mask; (slot = ld->by_name[b]) != 0;
	    b = (b + 1) & mask) {
		rs = &ld->secs[slot - 1];
		if (rs->kind == kind && (kind == SEC_AGENT ||
		    strcmp(rs->name, name) == 0))
			return rs;
	}
	return NULL;
}

static void
section_put(struct loader *ld, size_t i)
{
	size_t mask = ld->by_name_size - 1, b;

	for (b = section_hash(ld->secs[i].kind, ld->secs[i].name) & mask;
	    ld->by_name[b] != 0; b = (b + 1) & mask)
		;
	ld->by_name[b] = i + 1;
}

/* Add secs[i] to the index, growing it to stay at most half full. */
static void
section_index(struct loader *ld, size_t i)
{
	size_t j;

	if (ld->n_secs * 2 > ld->by_name_size) {
		free(ld->by_name);
		ld->by_name_size = ld->by_name_size ? ld->by_name_size * 2 : 64;
		ld->by_name = wp_xcalloc(ld->by_name_size, sizeof(size_t));
		for (j = 0; j < ld->n_secs; j++)
			if (j != i)
				section_put(ld, j);
	}
	section_put(ld, i);
}

static void
section_header(struct loader *ld, char *s)
{
	char *end, *inner, *colon, *name = NULL, buf[WP_QUOTE_SIZE + 64];
	const char *kind = NULL, *alt;
	static const char *const kinds[] = { "agent", "monitor", "alert", NULL };
	struct raw_section *rs;
	int k;

	ld->cur = CUR_BAD;
	if ((end = strchr(s, ']')) == NULL) {
		report(ld, ld->lineno, "unterminated section header "
		    "(missing ']')");
		return;
	}
	*end = '\0';
	if (trim(end + 1)[0] != '\0')
		report(ld, ld->lineno, "unexpected text after ']': \"%s\"",
		    WP_Q(trim(end + 1)));
	inner = trim(s + 1);
	if ((colon = strchr(inner, ':')) != NULL) {
		*colon = '\0';
		name = colon + 1;
	}
	kind = inner;
	k = find_key(kinds, kind);
	if (k < 0) {
		alt = suggest(kind, kinds, NULL);
		if (alt != NULL && strcmp(alt, "agent") != 0 && name != NULL)
			snprintf(buf, sizeof(buf), " (did you mean [%s:%s]?)",
			    alt, WP_Q(name));
		else if (alt != NULL && strcmp(alt, "agent") == 0)
			snprintf(buf, sizeof(buf), " (did you mean [agent]?)");
		else
			buf[0] = '\0';
		report(ld, ld->lineno, "unknown section [%s%s%s] (expected "
		    "[agent], [monitor:NAME] or [alert:NAME])%s", WP_Q(kind),
		    name != NULL ? ":" : "", name != NULL ? WP_Q(name) : "",
		    buf);
		return;
	}
	if (k == SEC_AGENT && name != NULL) {
		report(ld, ld->lineno, "[agent] takes no name");
		return;
	}
	if (k != SEC_AGENT && name == NULL) {
		report(ld, ld->lineno, "section [%s] needs a name: [%s:NAME]",
		    kind, kind);
		return;
	}
	/* A name is a metric label, a log prefix and a key in the API, on
	 * every scrape and line: short and plain. */
	if (k != SEC_AGENT && (strlen(name) > NAME_MAX_LEN ||
	    !valid_name(name, "._-"))) {
		report(ld, ld->lineno, "%s name \"%s\": " NAME_RULE, kind,
		    WP_Q(name));
		return;
	}
	if ((rs = section_find(ld, k, name)) != NULL) {
		if (k == SEC_AGENT)
			report(ld, ld->lineno, "duplicate [agent] section "
			    "(first defined at line %d)", rs->line);
		else
			report(ld, ld->lineno, "duplicate %s name \"%s\" "
			    "(first defined at line %d)", kind, name, rs->line);
		return;
	}
	if (ld->n_secs == ld->cap_secs) {
		ld->cap_secs = ld->cap_secs ? ld->cap_secs * 2 : 16;
		ld->secs = wp_xrealloc(ld->secs, ld->cap_secs * sizeof(*rs));
	}
	rs = &ld->secs[ld->n_secs];
	memset(rs, 0, sizeof(*rs));
	rs->kind = k;
	rs->name = k == SEC_AGENT ? NULL : wp_xstrdup(name);
	rs->line = ld->lineno;
	ld->cur = (long)ld->n_secs++;
	section_index(ld, (size_t)ld->cur);
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
	struct loader *ld = stream;
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
		report(ld, ld->lineno, "line contains a NUL byte");
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
	s = trim(s);
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	/* An inline comment is ';' after whitespace, as inih has it. */
	for (e = s + 1; *e != '\0'; e++) {
		if (*e == ';' && isspace((unsigned char)e[-1])) {
			*e = '\0';
			break;
		}
	}
	s = trim(s);
	if (*s == '[') {
		section_header(ld, s);
		return str;
	}
	if ((sep = strpbrk(s, "=:")) == NULL) {
		report(ld, ld->lineno, "expected \"key = value\", a [section] "
		    "or a comment, not \"%s\"", WP_Q(s));
		return str;
	}
	c = *sep;
	*sep = '\0';
	key = trim(s);
	value = trim(sep + 1);
	if (*key == '\0') {
		report(ld, ld->lineno, "missing key name before '%c'", c);
		return str;
	}
	ld->key = key;
	ld->value = value;
	klen = strlen(key);
	vlen = strlen(value);
	/* inih needs room for the line plus "\r\n\0" (see ini.h). */
	if (num > 0 && klen + vlen + 4 <= (size_t)num)
		snprintf(str, (size_t)num, "%s=%s", key, value);
	else {
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
	struct loader *ld = user;
	struct raw_section *rs;
	struct raw_kv *kv;

	(void)section;
	if (ld->subst) {
		name = ld->key;
		value = ld->value;
	}
	if (ld->cur == CUR_BAD)
		return 1;
	if (ld->cur == CUR_NONE) {
		report(ld, ld->lineno, "key \"%s\" is outside any section "
		    "(put it under [agent], [monitor:NAME] or [alert:NAME])",
		    WP_Q(name));
		return 1;
	}
	rs = &ld->secs[ld->cur];
	rs->kv = wp_xrealloc(rs->kv, (rs->n_kv + 1) * sizeof(*kv));
	kv = &rs->kv[rs->n_kv++];
	kv->key = wp_xstrdup(name);
	kv->value = wp_xstrdup(value);
	kv->line = ld->lineno;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Secrets in files */

/* The value KV->key supplies through the file KV->value (relative to the
 * configuration's folder); NULL after reporting at KV's line. */
static char *
read_secret(struct loader *ld, const struct raw_kv *kv)
{
	char *path = resolve_path(ld->dir, kv->value), *out, why[PATH_MAX + 128];

	if (cfg_read_secret(path, &out, why, sizeof(why)) != 0)
		report(ld, kv->line, "%s: %s", kv->key, why);
	free(path);
	return out;
}

/* K for a key "K_file" (K non-empty) in BUF, else NULL. */
static const char *
file_key_base(const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key), sl = sizeof(FILE_SUFFIX) - 1;

	if (kl <= sl || kl - sl >= len || strcmp(key + kl - sl,
	    FILE_SUFFIX) != 0)
		return NULL;
	memcpy(buf, key, kl - sl);
	buf[kl - sl] = '\0';
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Validation */

static const char *const agent_keys[] = {
	"database", "plugin_dir", "listen", "retention_days", "log_level",
	"log", "user", "api_token_file", "pidfile", NULL
};
enum {
	AK_DATABASE, AK_PLUGIN_DIR, AK_LISTEN, AK_RETENTION, AK_LOG_LEVEL,
	AK_LOG, AK_USER, AK_TOKEN, AK_PIDFILE, AK__COUNT
};

static const char *const monitor_keys[] = {
	"type", "interval", "timeout", "retries", "retry_interval", "enabled",
	"alerts", NULL
};
enum {
	MK_TYPE, MK_INTERVAL, MK_TIMEOUT, MK_RETRIES, MK_RETRY_INTERVAL,
	MK_ENABLED, MK_ALERTS, MK__COUNT
};

static const char *const alert_keys[] = { "type", "timeout", NULL };

/* "HOST:PORT" or "[V6]:PORT" with a port from 0 to 65535. */
static int
check_listen(struct loader *ld, const struct raw_kv *kv)
{
	const char *v = kv->value, *port, *close;
	long long p;
	size_t i;

	if (v[0] == '[') {
		close = strchr(v, ']');
		if (close == NULL || close == v + 1 || close[1] != ':')
			goto bad;
		port = close + 2;
	} else {
		port = strrchr(v, ':');
		if (port == NULL || port == v ||
		    memchr(v, ':', (size_t)(port - v)) != NULL)
			goto bad;
		port++;
	}
	for (i = 0; v[i] != '\0'; i++)
		if (isspace((unsigned char)v[i]))
			goto bad;
	if (wp_parse_int(port, 0, 65535, &p) != 0) {
		report(ld, kv->line, "listen: port \"%s\" is not a number "
		    "from 0 to 65535", WP_Q(port));
		return WP_EINVAL;
	}
	return 0;
bad:
	report(ld, kv->line, "listen: \"%s\" is not HOST:PORT, [IPV6]:PORT "
	    "or off", WP_Q(v));
	return WP_EINVAL;
}

static void
check_agent(struct loader *ld, struct cfg_agent *ag, const char *dir)
{
	const struct raw_section *rs = NULL;
	const struct raw_kv *kv, *seen[AK__COUNT] = { NULL };
	char mean[128];
	long long n;
	int k, lvl;
	size_t i;

	for (i = 0; i < ld->n_secs; i++)
		if (ld->secs[i].kind == SEC_AGENT)
			rs = &ld->secs[i];
	if (rs == NULL)
		return;
	ag->line = rs->line;
	for (i = 0; i < rs->n_kv; i++) {
		kv = &rs->kv[i];
		if ((k = find_key(agent_keys, kv->key)) < 0) {
			report(ld, kv->line, "unknown key \"%s\" in [agent]%s",
			    WP_Q(kv->key), mean_text(suggest(kv->key, agent_keys,
			    NULL), mean, sizeof(mean)));
			continue;
		}
		if (seen[k] != NULL) {
			report(ld, kv->line, "duplicate key \"%s\" (first set "
			    "at line %d)", kv->key, seen[k]->line);
			continue;
		}
		seen[k] = kv;
		if (kv->value[0] == '\0') {
			report(ld, kv->line, "%s: no value", kv->key);
			continue;
		}
		switch (k) {
		case AK_DATABASE:
			free(ag->database);
			ag->database = resolve_path(dir, kv->value);
			break;
		case AK_PLUGIN_DIR:
			free(ag->plugin_dir);
			ag->plugin_dir = resolve_path(dir, kv->value);
			break;
		case AK_LISTEN:
			free(ag->listen);
			ag->listen = NULL;
			if (strcmp(kv->value, "off") == 0)
				break;
			if (check_listen(ld, kv) == 0)
				ag->listen = wp_xstrdup(kv->value);
			break;
		case AK_RETENTION:
			if (wp_parse_int(kv->value, 0, 36500, &n) != 0)
				report(ld, kv->line, "retention_days: \"%s\" is "
				    "not a whole number of days from 0 to 36500",
				    WP_Q(kv->value));
			else
				ag->retention_days = (int)n;
			break;
		case AK_LOG_LEVEL:
			if (wp_log_parse_level(kv->value, &lvl) != 0)
				report(ld, kv->line, "log_level: \"%s\" is not a "
				    "level (use debug, info, warn or error)",
				    WP_Q(kv->value));
			else
				ag->log_level = lvl;
			break;
		case AK_LOG:
			if (strcmp(kv->value, "stderr") == 0)
				ag->log_syslog = 0;
			else if (strcmp(kv->value, "syslog") == 0)
				ag->log_syslog = 1;
			else
				report(ld, kv->line, "log: \"%s\" is not a log "
				    "target (use stderr or syslog)",
				    WP_Q(kv->value));
			break;
		case AK_USER:
			ag->user = wp_xstrdup(kv->value);
			break;
		case AK_TOKEN:
			ag->api_token_file = resolve_path(dir, kv->value);
			break;
		case AK_PIDFILE:
			ag->pidfile = resolve_path(dir, kv->value);
			break;
		}
	}
}

/* The plugin for (kind, type), asking lookup() once per distinct pair. */
static const struct plugin_cache *
find_plugin(struct loader *ld, const char *plugin_dir, int kind,
    const char *type)
{
	struct plugin_cache *c;
	char why[512];
	size_t i;

	for (i = 0; i < ld->n_cache; i++) {
		c = &ld->cache[i];
		if (c->kind == kind && strcmp(c->type, type) == 0)
			return c;
	}
	ld->cache = wp_xrealloc(ld->cache, (ld->n_cache + 1) * sizeof(*c));
	c = &ld->cache[ld->n_cache++];
	why[0] = '\0';
	c->kind = kind;
	c->type = wp_xstrdup(type);
	c->plugin = ld->lookup(ld->lookup_arg, plugin_dir, kind, type, why,
	    sizeof(why));
	c->why = wp_xstrdup(why);
	return c;
}

static const struct wp_key *
plugin_key(const struct wp_plugin *p, const char *key)
{
	const struct wp_key *k;

	for (k = p->keys; k != NULL && k->name != NULL; k++)
		if (strcmp(k->name, key) == 0)
			return k;
	return NULL;
}

/*
 * Build the generic part of a monitor or alert section: the type, its
 * plugin, the plugin's keys (checked against its table) and the
 * definition.  `common` lists the section kind's common keys; their
 * entries are stored in seen[] (indexed as in `common`) for the caller to
 * parse.  Problems go to the loader; s->configurable says whether the
 * plugin may still judge s->kv.
 */
static void
build_section(struct loader *ld, const struct raw_section *rs,
    const char *plugin_dir, const char *const *common,
    const struct raw_kv **seen, struct cfg_section *s)
{
	const struct plugin_cache *pc = NULL;
	const struct raw_kv *kv, *type;
	const struct wp_key *pk;
	const char *names[64], *key, *base;
	const char *kind = kind_names[rs->kind];
	struct wp_buf def = { NULL, 0, 0 };
	char mean[128], basebuf[128], *value;
	size_t i, j, nn;
	int k, checked;

	s->name = wp_xstrdup(rs->name);
	s->line = rs->line;
	for (i = 0; i < rs->n_kv; i++) {
		kv = &rs->kv[i];
		if ((k = find_key(common, kv->key)) < 0)
			continue;
		if (seen[k] != NULL)
			report(ld, kv->line, "duplicate key \"%s\" (first set "
			    "at line %d)", kv->key, seen[k]->line);
		else
			seen[k] = kv;
	}

	type = seen[0];
	if (type == NULL)
		report(ld, rs->line, "[%s:%s] has no \"type\" key", kind,
		    rs->name);
	else if (type->value[0] == '\0')
		report(ld, type->line, "type: no value");
	else if (!valid_name(type->value, "_-"))
		report(ld, type->line, "type: \"%s\" is not a plugin type "
		    "name (letters, digits, '_' and '-')", WP_Q(type->value));
	else if (ld->lookup != NULL) {
		pc = find_plugin(ld, plugin_dir, rs->kind == SEC_MONITOR ?
		    WP_PLUGIN_CHECK : WP_PLUGIN_ALERT, type->value);
		if (pc->plugin == NULL)
			report(ld, type->line, "unknown %s type \"%s\"%s%s",
			    rs->kind == SEC_MONITOR ? "check" : "alert",
			    WP_Q(type->value), pc->why[0] != '\0' ? ": " : "",
			    pc->why);
	}
	if (type != NULL) {
		s->type = wp_xstrdup(type->value);
		s->type_line = type->line;
	}
	s->plugin = pc != NULL ? pc->plugin : NULL;
	/* Without a known plugin the keys cannot be judged: no cascade. */
	checked = s->plugin != NULL;

	/* Candidates for "did you mean": the plugin's keys, then common. */
	nn = 0;
	if (checked)
		for (pk = s->plugin->keys; pk != NULL && pk->name != NULL &&
		    nn < sizeof(names) / sizeof(names[0]) - 1; pk++)
			names[nn++] = pk->name;
	names[nn] = NULL;

	/* The definition holds the values in effect (a K_file key's
	 * contents), so a changed secret file counts as a change on reload. */
	s->kv = wp_xcalloc(rs->n_kv, sizeof(*s->kv));
	for (i = 0; i < rs->n_kv; i++) {
		kv = &rs->kv[i];
		key = kv->key;
		value = NULL;
		if (find_key(common, kv->key) >= 0) {
			wp_buf_printf(&def, "%s=%s\n", kv->key, kv->value);
			continue;
		}
		if (checked) {
			pk = plugin_key(s->plugin, kv->key);
			if (pk == NULL && (base = file_key_base(kv->key, basebuf,
			    sizeof(basebuf))) != NULL &&
			    (pk = plugin_key(s->plugin, base)) != NULL) {
				key = pk->name;
				if ((value = read_secret(ld, kv)) == NULL)
					continue;
			}
			if (pk == NULL) {
				report(ld, kv->line, "unknown key \"%s\" for "
				    "type %s%s", WP_Q(kv->key), s->type,
				    mean_text(suggest(kv->key, names, common),
				    mean, sizeof(mean)));
				continue;
			}
			if (!(pk->flags & WP_KEY_MULTI)) {
				for (j = 0; j < s->n_kv; j++)
					if (strcmp(s->kv[j].key, key) == 0)
						break;
				if (j < s->n_kv && strcmp(kv->key, key) != 0)
					report(ld, kv->line, "%s: \"%s\" is "
					    "already set at line %d (use one of "
					    "%s and %s)", kv->key, key,
					    s->kv[j].line, key, kv->key);
				else if (j < s->n_kv)
					report(ld, kv->line, "duplicate key "
					    "\"%s\" (first set at line %d)",
					    kv->key, s->kv[j].line);
				if (j < s->n_kv) {
					if (value != NULL) {
						explicit_bzero(value,
						    strlen(value));
						free(value);
					}
					continue;
				}
			}
		}
		s->kv[s->n_kv].key = wp_xstrdup(key);
		s->kv[s->n_kv].value = value != NULL ? value :
		    wp_xstrdup(kv->value);
		s->kv[s->n_kv].line = kv->line;
		wp_buf_printf(&def, "%s=%s\n", key, s->kv[s->n_kv].value);
		s->n_kv++;
	}
	s->definition = wp_buf_steal(&def);
	if (!checked)
		return;
	s->configurable = 1;
	/* A plugin key named like a common key is the common key: skip it. */
	for (pk = s->plugin->keys; pk != NULL && pk->name != NULL; pk++) {
		if (!(pk->flags & WP_KEY_REQUIRED) ||
		    find_key(common, pk->name) >= 0)
			continue;
		for (j = 0; j < s->n_kv; j++)
			if (strcmp(s->kv[j].key, pk->name) == 0)
				break;
		if (j < s->n_kv)
			continue;
		report(ld, rs->line, "[%s:%s] is missing the required key "
		    "\"%s\" for type %s", kind, rs->name, pk->name, s->type);
		/* configure() is promised its required keys. */
		s->configurable = 0;
	}
}

/* Parse a duration key, from MIN to MAX ms; 0 and *ms, or WP_EINVAL
 * after reporting. */
static int
duration(struct loader *ld, const struct raw_kv *kv, int64_t min,
    int64_t max, int64_t *ms)
{
	char buf[32];
	int64_t v;

	if (wp_parse_duration(kv->value, &v) != 0) {
		report(ld, kv->line, "%s: \"%s\" is not a duration ("
		    DURATION_FORMS ")", kv->key, WP_Q(kv->value));
		return WP_EINVAL;
	}
	if (v < min) {
		wp_format_duration(min, buf, sizeof(buf));
		report(ld, kv->line, "%s: \"%s\" is too short (minimum %s)",
		    kv->key, WP_Q(kv->value), buf);
		return WP_EINVAL;
	}
	if (v > max) {
		wp_format_duration(max, buf, sizeof(buf));
		report(ld, kv->line, "%s: \"%s\" is too long (maximum %s)",
		    kv->key, WP_Q(kv->value), buf);
		return WP_EINVAL;
	}
	*ms = v;
	return 0;
}

static int
alert_exists(const struct loader *ld, const char *name)
{
	size_t i;

	for (i = 0; i < ld->n_secs; i++)
		if (ld->secs[i].kind == SEC_ALERT &&
		    strcmp(ld->secs[i].name, name) == 0)
			return 1;
	return 0;
}

/* The "alerts" key: "none", or a comma-separated list of alert names. */
static void
parse_alerts(struct loader *ld, const struct raw_kv *kv, struct cfg_monitor *m)
{
	char *copy, *item, *next;
	size_t i;

	m->all_alerts = 0;
	if (strcmp(kv->value, "none") == 0)
		return;
	copy = wp_xstrdup(kv->value);
	for (item = copy; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		item = trim(item);
		if (*item == '\0') {
			report(ld, kv->line, "alerts: empty name in \"%s\"",
			    WP_Q(kv->value));
			continue;
		}
		if (strcmp(item, "none") == 0) {
			report(ld, kv->line, "alerts: \"none\" cannot be "
			    "combined with alert names");
			continue;
		}
		for (i = 0; i < m->n_alerts; i++)
			if (strcmp(m->alerts[i], item) == 0)
				break;
		if (i < m->n_alerts) {
			report(ld, kv->line, "alerts: \"%s\" is listed twice",
			    WP_Q(item));
			continue;
		}
		if (!alert_exists(ld, item)) {
			report(ld, kv->line, "alerts: unknown alert \"%s\" "
			    "(there is no [alert:%s] section)", WP_Q(item),
			    WP_Q(item));
			continue;
		}
		m->alerts = wp_xrealloc(m->alerts,
		    (m->n_alerts + 1) * sizeof(*m->alerts));
		m->alerts[m->n_alerts++] = wp_xstrdup(item);
	}
	free(copy);
}

/* The line of the first of KEYS (MK_* indices, -1 ends) that is set, else
 * the section's. */
static int
first_line(const struct raw_section *rs, const struct raw_kv *const *seen,
    const int *keys)
{
	for (; *keys >= 0; keys++)
		if (seen[*keys] != NULL)
			return seen[*keys]->line;
	return rs->line;
}

/*
 * Warn when a failing check cannot finish within its interval: the
 * schedule then skips slots (a check is never doubled), so the monitor is
 * checked less often than the file says.  Worst case: every attempt times
 * out, and the retries wait retry_interval between them.
 */
static void
check_fit(struct loader *ld, const struct raw_section *rs,
    const struct raw_kv *const *seen, const struct cfg_monitor *m)
{
	static const int t_keys[] = { MK_TIMEOUT, MK_INTERVAL, -1 };
	static const int r_keys[] = { MK_RETRIES, MK_RETRY_INTERVAL,
	    MK_TIMEOUT, MK_INTERVAL, -1 };
	char iv[32], to[32], worst[32];
	int64_t w;

	wp_format_duration(m->interval_ms, iv, sizeof(iv));
	wp_format_duration(m->timeout_ms, to, sizeof(to));
	if (m->timeout_ms > m->interval_ms) {
		warn_at(ld, first_line(rs, seen, t_keys), "timeout %s is longer "
		    "than interval %s: a check that times out runs into its "
		    "next slot, which is skipped", to, iv);
		return;
	}
	w = m->timeout_ms * (1 + m->retries) +
	    m->retry_interval_ms * m->retries;
	if (w > m->interval_ms) {
		wp_format_duration(w, worst, sizeof(worst));
		warn_at(ld, first_line(rs, seen, r_keys), "a failing check "
		    "takes up to %s (timeout %s x (1 + retries %d) + "
		    "retry_interval x retries), longer than interval %s: the "
		    "slots it runs into are skipped", worst, to, m->retries,
		    iv);
	}
}

static void
check_monitor(struct loader *ld, const struct raw_section *rs,
    const char *plugin_dir, struct cfg_monitor *m)
{
	const struct raw_kv *seen[MK__COUNT] = { NULL }, *kv;
	long long n;
	int k, on;

	m->interval_ms = 60000;
	m->timeout_ms = 10000;
	m->retry_interval_ms = 1000;
	m->retries = 2;
	m->enabled = 1;
	m->all_alerts = 1;
	build_section(ld, rs, plugin_dir, monitor_keys, seen, &m->s);
	for (k = MK_INTERVAL; k < MK__COUNT; k++)
		if ((kv = seen[k]) != NULL && kv->value[0] == '\0')
			report(ld, kv->line, "%s: no value%s", kv->key,
			    k == MK_ALERTS ? " (use \"none\" for no alerts)" :
			    "");
	if ((kv = seen[MK_INTERVAL]) != NULL && kv->value[0] != '\0')
		duration(ld, kv, 100, INTERVAL_MAX_MS, &m->interval_ms);
	if ((kv = seen[MK_TIMEOUT]) != NULL && kv->value[0] != '\0')
		duration(ld, kv, 1, TIMEOUT_MAX_MS, &m->timeout_ms);
	if ((kv = seen[MK_RETRY_INTERVAL]) != NULL && kv->value[0] != '\0')
		duration(ld, kv, 0, TIMEOUT_MAX_MS, &m->retry_interval_ms);
	if ((kv = seen[MK_RETRIES]) != NULL && kv->value[0] != '\0') {
		if (wp_parse_int(kv->value, 0, 100, &n) != 0)
			report(ld, kv->line, "retries: \"%s\" is not a whole "
			    "number from 0 to 100", WP_Q(kv->value));
		else
			m->retries = (int)n;
	}
	if ((kv = seen[MK_ENABLED]) != NULL && kv->value[0] != '\0') {
		if (wp_parse_bool(kv->value, &on) != 0)
			report(ld, kv->line, "enabled: \"%s\" is not a boolean "
			    "(use true or false)", WP_Q(kv->value));
		else
			m->enabled = on;
	}
	if ((kv = seen[MK_ALERTS]) != NULL && kv->value[0] != '\0')
		parse_alerts(ld, kv, m);
	check_fit(ld, rs, seen, m);
}

static void
check_alert(struct loader *ld, const struct raw_section *rs,
    const char *plugin_dir, struct cfg_alert *a)
{
	const struct raw_kv *seen[2] = { NULL, NULL };

	a->timeout_ms = 10000;
	build_section(ld, rs, plugin_dir, alert_keys, seen, &a->s);
	if (seen[1] == NULL)
		return;
	if (seen[1]->value[0] == '\0')
		report(ld, seen[1]->line, "timeout: no value");
	else
		duration(ld, seen[1], 1, TIMEOUT_MAX_MS, &a->timeout_ms);
}

/* ------------------------------------------------------------------------ */
/* The interface */

static void
section_free(struct cfg_section *s)
{
	size_t i;

	free(s->name);
	free(s->type);
	for (i = 0; i < s->n_kv; i++) {
		free((char *)s->kv[i].key);
		free((char *)s->kv[i].value);
	}
	free(s->kv);
	free(s->definition);
}

void
config_free(struct config *cfg)
{
	size_t i, j;

	if (cfg == NULL)
		return;
	free(cfg->file);
	free(cfg->dir);
	free(cfg->agent.database);
	free(cfg->agent.plugin_dir);
	free(cfg->agent.listen);
	free(cfg->agent.user);
	free(cfg->agent.api_token_file);
	free(cfg->agent.pidfile);
	for (i = 0; i < cfg->n_monitors; i++) {
		section_free(&cfg->monitors[i].s);
		for (j = 0; j < cfg->monitors[i].n_alerts; j++)
			free(cfg->monitors[i].alerts[j]);
		free(cfg->monitors[i].alerts);
	}
	free(cfg->monitors);
	for (i = 0; i < cfg->n_alerts; i++)
		section_free(&cfg->alerts[i].s);
	free(cfg->alerts);
	free(cfg);
}

int
config_load(const char *file, const char *plugin_dir_override,
    cfg_lookup_fn lookup, void *lookup_arg, struct wp_diag *diag,
    struct config **out)
{
	struct loader ld;
	struct config *cfg = NULL;
	const char *prev_file = diag->file;
	char *cwd;
	size_t i, nm = 0, na = 0;
	int rc, ret = WP_EINVAL;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.cur = CUR_NONE;
	ld.lookup = lookup;
	ld.lookup_arg = lookup_arg;
	/* Problems name this file, whatever the caller's sink was set up
	 * with; a sink without a file keeps this one for configure(). */
	diag->file = file;

	if ((ld.fp = fopen(file, "r")) == NULL) {
		report(&ld, 0, "cannot open: %s", strerror(errno));
		goto done;
	}
	rc = ini_parse_stream(read_line, &ld, on_key, &ld);
	fclose(ld.fp);
	if (ld.read_errno != 0) {
		report(&ld, 0, "cannot read: %s", strerror(ld.read_errno));
		goto done;
	}
	if (rc == -2)
		report(&ld, 0, "out of memory while parsing");
	else if (rc > 0 && !has_problem_at(&ld, rc))
		report(&ld, rc, "cannot parse this line");

	cfg = wp_xcalloc(1, sizeof(*cfg));
	cfg->file = wp_xstrdup(file);
	cfg->dir = file_dir(file);
	ld.dir = cfg->dir;
	cfg->agent.database = resolve_path(cfg->dir, DEFAULT_DATABASE);
	cfg->agent.plugin_dir = wp_xstrdup(PKGLIBDIR);
	cfg->agent.listen = wp_xstrdup(DEFAULT_LISTEN);
	cfg->agent.retention_days = 30;
	cfg->agent.log_level = WP_LOG_INFO;
	cfg->agent.log_syslog = -1;
	check_agent(&ld, &cfg->agent, cfg->dir);
	if (plugin_dir_override != NULL) {
		cwd = current_dir();
		free(cfg->agent.plugin_dir);
		cfg->agent.plugin_dir = resolve_path(cwd, plugin_dir_override);
		free(cwd);
	}

	for (i = 0; i < ld.n_secs; i++) {
		if (ld.secs[i].kind == SEC_MONITOR)
			nm++;
		else if (ld.secs[i].kind == SEC_ALERT)
			na++;
	}
	cfg->monitors = wp_xcalloc(nm, sizeof(*cfg->monitors));
	cfg->alerts = wp_xcalloc(na, sizeof(*cfg->alerts));
	for (i = 0; i < ld.n_secs; i++) {
		if (ld.secs[i].kind == SEC_MONITOR)
			check_monitor(&ld, &ld.secs[i], cfg->agent.plugin_dir,
			    &cfg->monitors[cfg->n_monitors++]);
		else if (ld.secs[i].kind == SEC_ALERT)
			check_alert(&ld, &ld.secs[i], cfg->agent.plugin_dir,
			    &cfg->alerts[cfg->n_alerts++]);
	}
	*out = cfg;
	if (ld.n_probs == ld.n_warnings)
		ret = 0;
done:
	if (ld.n_probs > 0)
		qsort(ld.probs, ld.n_probs, sizeof(*ld.probs), problem_cmp);
	for (i = 0; i < ld.n_probs; i++) {
		if (ld.probs[i].warning)
			diag_warning(diag, ld.probs[i].line, "%s",
			    ld.probs[i].msg);
		else
			diag_error(diag, ld.probs[i].line, "%s",
			    ld.probs[i].msg);
	}
	if (prev_file != NULL)
		diag->file = prev_file;
	loader_free(&ld);
	return ret;
}

const struct cfg_monitor *
config_find_monitor(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; cfg != NULL && i < cfg->n_monitors; i++)
		if (strcmp(cfg->monitors[i].s.name, name) == 0)
			return &cfg->monitors[i];
	return NULL;
}

const struct cfg_alert *
config_find_alert(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; cfg != NULL && i < cfg->n_alerts; i++)
		if (strcmp(cfg->alerts[i].s.name, name) == 0)
			return &cfg->alerts[i];
	return NULL;
}
