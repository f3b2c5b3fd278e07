/*
 * admin-ini -- JSON bodies into INI lines, monitor files, ETags and
 * atomic writes (see admin-ini.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "admin-ini.h"
#include "util.h"

void
admin_errors_add(struct admin_errors *e, const char *key, const char *fmt,
    ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		fputs("watchpost: out of memory\n", stderr);
		abort();
	}
	va_end(ap);
	e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
	e->v[e->n].key = key != NULL ? xstrdup(key) : NULL;
	e->v[e->n].message = msg;
	e->n++;
}

char *
admin_errors_json(const struct admin_errors *e)
{
	json_t *list = json_array(), *o;
	char *out;
	size_t i;

	for (i = 0; i < e->n; i++) {
		o = json_object();
		/* A key or message cut from a client's bytes may not be
		 * UTF-8; json_string() then gives NULL, and null says so. */
		json_object_set_new(o, "key", e->v[i].key != NULL ?
		    json_string(e->v[i].key) : json_null());
		json_object_set_new(o, "message", json_string(e->v[i].message));
		json_array_append_new(list, o);
	}
	o = json_pack("{s:o}", "errors", list);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

void
admin_errors_free(struct admin_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		free(e->v[i].key);
		free(e->v[i].message);
	}
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

const char *
admin_key_problem(const char *key)
{
	size_t i;

	if (key[0] < 'a' || key[0] > 'z')
		return "a key starts with a lowercase letter";
	for (i = 0; key[i] != '\0'; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') ||
		    (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
			return "a key holds only lowercase letters, digits "
			    "and '_'";
	if (i > ADMIN_KEY_MAX)
		return "a key is at most 64 characters long";
	return NULL;
}

const char *
admin_value_problem(const char *v, size_t len)
{
	size_t i;

	if (memchr(v, '\0', len) != NULL)
		return "the value holds a NUL byte";
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return "the value holds a control character (a newline "
			    "or tab, say): an INI value is one line";
	if (len > 0 && (v[0] == ' ' || v[len - 1] == ' '))
		return "the value starts or ends with a blank, which the INI "
		    "reader would drop";
	/* A ';' after a blank starts a comment: the rest would be lost.
	 * A value is written after "key = ", so a leading ';' counts. */
	for (i = 0; i < len; i++)
		if (v[i] == ';' && (i == 0 || v[i - 1] == ' '))
			return "the value holds \" ;\" or starts with ';', "
			    "which starts a comment in an INI file";
	return NULL;
}

void
admin_def_add(struct admin_def *d, const char *key, const char *value)
{
	d->kv = xrealloc(d->kv, (d->n + 1) * sizeof(*d->kv));
	d->kv[d->n].key = xstrdup(key);
	d->kv[d->n].value = value != NULL ? xstrdup(value) : NULL;
	d->n++;
}

void
admin_def_free(struct admin_def *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->kv[i].key);
		free(d->kv[i].value);
	}
	free(d->kv);
	d->kv = NULL;
	d->n = 0;
}

/* One JSON scalar as INI text into BUF (LEN bytes), or NULL (the type has
 * no INI form).  *SLEN gets the text's length. */
static const char *
scalar_text(json_t *v, char *buf, size_t len, size_t *slen)
{
	const char *s = NULL;

	switch (json_typeof(v)) {
	case JSON_STRING:
		*slen = json_string_length(v);
		return json_string_value(v);
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		s = buf;
		break;
	case JSON_REAL:
		snprintf(buf, len, "%.17g", json_real_value(v));
		s = buf;
		break;
	case JSON_TRUE:
		s = "true";
		break;
	case JSON_FALSE:
		s = "false";
		break;
	default:
		return NULL;
	}
	*slen = strlen(s);
	return s;
}

/* Add member KEY's value V (a scalar) to OUT, or its problem to ERRS. */
static void
add_scalar(struct admin_def *out, struct admin_errors *errs, const char *key,
    json_t *v)
{
	char num[64];
	const char *text, *why;
	size_t len = 0;

	if ((text = scalar_text(v, num, sizeof(num), &len)) == NULL) {
		admin_errors_add(errs, key, "%s: a value is a string, a number, "
		    "a boolean, or an array of them for a repeatable key", key);
		return;
	}
	if ((why = admin_value_problem(text, len)) != NULL) {
		admin_errors_add(errs, key, "%s: %s", key, why);
		return;
	}
	admin_def_add(out, key, text);
}

int
admin_json_parse(const char *body, size_t len, struct admin_def *out,
    struct admin_errors *errs, int *syntax)
{
	json_error_t jerr;
	json_t *root, *v, *el;
	const char *key, *why;
	char clean[ADMIN_KEY_MAX * 4 + 8];
	size_t i, n0 = errs->n;

	memset(out, 0, sizeof(*out));
	*syntax = 0;
	/* Duplicate members would make "which one counts" a guess. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		*syntax = 1;
		admin_errors_add(errs, NULL, "the body is not JSON: %s (at "
		    "character %d)", jerr.text, jerr.position);
		return WP_EINVAL;
	}
	if (!json_is_object(root)) {
		admin_errors_add(errs, NULL, "the body is a JSON object of INI "
		    "keys, e.g. {\"type\": \"http\", \"url\": \"...\"}");
		json_decref(root);
		return WP_EINVAL;
	}
	json_object_foreach(root, key, v) {
		/* jansson refuses \u0000 (no JSON_ALLOW_NUL): a key is a
		 * C string. */
		if ((why = admin_key_problem(key)) != NULL) {
			str_escape(key, ADMIN_KEY_MAX, clean, sizeof(clean));
			admin_errors_add(errs, NULL, "\"%s\": not a key name: %s",
			    clean, why);
			continue;
		}
		if (json_is_null(v)) {
			admin_def_add(out, key, NULL);
			continue;
		}
		if (!json_is_array(v)) {
			add_scalar(out, errs, key, v);
			continue;
		}
		json_array_foreach(v, i, el)
			add_scalar(out, errs, key, el);
	}
	json_decref(root);
	if (errs->n > n0) {
		admin_def_free(out);
		return WP_EINVAL;
	}
	return 0;
}

/* Is KEY set in D (a line of it, or a null)? */
static int
def_has(const struct admin_def *d, const char *key)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->kv[i].key, key) == 0)
			return 1;
	return 0;
}

/* Copy PATCH's lines of KEY (none for a null) into OUT. */
static void
add_lines_of(struct admin_def *out, const struct admin_def *patch,
    const char *key)
{
	size_t i;

	for (i = 0; i < patch->n; i++)
		if (strcmp(patch->kv[i].key, key) == 0 &&
		    patch->kv[i].value != NULL)
			admin_def_add(out, key, patch->kv[i].value);
}

void
admin_def_merge(const struct admin_def *base, const struct admin_def *patch,
    struct admin_def *out)
{
	struct admin_def done = { NULL, 0 };
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < base->n; i++) {
		const char *key = base->kv[i].key;

		if (!def_has(patch, key)) {
			admin_def_add(out, key, base->kv[i].value);
			continue;
		}
		if (def_has(&done, key))
			continue;
		add_lines_of(out, patch, key);
		admin_def_add(&done, key, NULL);
	}
	for (i = 0; i < patch->n; i++) {
		const char *key = patch->kv[i].key;

		if (def_has(&done, key) || def_has(base, key))
			continue;
		add_lines_of(out, patch, key);
		admin_def_add(&done, key, NULL);
	}
	admin_def_free(&done);
}

void
admin_def_set(struct admin_def *d, const char *key, const char *value)
{
	struct admin_def patch = { NULL, 0 }, out;

	admin_def_add(&patch, key, value);
	admin_def_merge(d, &patch, &out);
	admin_def_free(&patch);
	admin_def_free(d);
	*d = out;
}

char *
admin_ini_render(const char *name, const struct admin_def *d)
{
	struct sbuf b = { NULL, 0, 0 };
	size_t i;

	sbuf_printf(&b, "[monitor:%s]\n", name);
	for (i = 0; i < d->n; i++)
		if (d->kv[i].value != NULL)
			sbuf_printf(&b, "%s = %s\n", d->kv[i].key,
			    d->kv[i].value);
	return sbuf_steal(&b);
}

void
admin_etag(const char *text, char *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *text != '\0'; text++) {
		h ^= (unsigned char)*text;
		h *= 0x100000001b3ULL;
	}
	snprintf(buf, len, "\"%016llx\"", (unsigned long long)h);
}

int
admin_if_match(const char *header, const char *etag, int exists)
{
	const char *p = header, *end;
	size_t n, elen = strlen(etag);

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 1 && *p == '*' && exists)
			return 1;
		/* If-Match compares strongly: a weak tag never matches. */
		if (exists && n == elen && memcmp(p, etag, n) == 0)
			return 1;
		p += n;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return 0;
}

/* fsync the folder DIR, so that a rename or unlink in it is on disk. */
static int
sync_dir(const char *dir, char *err, size_t errlen)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", dir,
		    strerror(errno));
		return WP_EIO;
	}
	if (fsync(fd) != 0) {
		snprintf(err, errlen, "cannot sync %s: %s", dir,
		    strerror(errno));
		rc = WP_EIO;
	}
	close(fd);
	return rc;
}

int
admin_file_stage(const char *dir, const char *name, const char *text,
    char **tmp, char *err, size_t errlen)
{
	char *path = xasprintf("%s/.%s.ini.XXXXXX", dir, name);
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd;

	*tmp = NULL;
	/* mkstemp's mode is 0600: a value may be a secret. */
	if ((fd = mkstemp(path)) < 0) {
		snprintf(err, errlen, "cannot create a file in %s: %s", dir,
		    strerror(errno));
		free(path);
		return WP_EIO;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot write %s: %s", path,
			    n < 0 ? strerror(errno) : "short write");
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		snprintf(err, errlen, "cannot sync %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errlen, "cannot close %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	*tmp = path;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	return WP_EIO;
}

int
admin_file_commit(const char *tmp, const char *path, const char *dir,
    char *err, size_t errlen)
{
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
		    strerror(errno));
		unlink(tmp);
		return WP_EIO;
	}
	return sync_dir(dir, err, errlen);
}

int
admin_file_remove(const char *path, const char *dir, char *err,
    size_t errlen)
{
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s: %s", path,
		    strerror(errno));
		return WP_EIO;
	}
	return sync_dir(dir, err, errlen);
}
