/*
 * keys -- typed configuration keys: table checks, the value parsers and
 * the section filler (see keys.h).
 *
 * A filled conf is one allocation: a header that records every string and
 * list array hung off the conf, then the conf bytes themselves, aligned
 * for any member.  keys_free() walks the header, so a plugin never frees
 * what the host parsed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "keys.h"
#include "util.h"

#define FILE_SUFFIX "_file"
#define SECRET_MAX (64 * 1024) /* bytes in a KEY_file file */
#define DURATION_FORMS "use e.g. 250ms, 10s, 5m, 1h"
#define HOST_MAX 253           /* a DNS name, bytes */
#define MSG_MAX 1024           /* one value message, before diag cuts it */

/* ------------------------------------------------------------------------ */
/* The conf allocation */

struct keys_hdr {
	void **owned;           /* what keys_free() frees besides the block */
	size_t n_owned, cap_owned;
	size_t conf_size;
};

/* The conf starts this far into the block: the header, rounded up so the
 * conf is aligned for any member. */
#define HDR_SPACE                                                        \
	((sizeof(struct keys_hdr) + alignof(max_align_t) - 1) /          \
	    alignof(max_align_t) * alignof(max_align_t))

static struct keys_hdr *
hdr_of(void *conf)
{
	return (struct keys_hdr *)(void *)((char *)conf - HDR_SPACE);
}

static void *
conf_new(size_t conf_size)
{
	char *block = xcalloc(1, HDR_SPACE + (conf_size ? conf_size : 1));

	((struct keys_hdr *)(void *)block)->conf_size = conf_size;
	return block + HDR_SPACE;
}

/* Record P as owned by CONF; returns P. */
static void *
own(void *conf, void *p)
{
	struct keys_hdr *h = hdr_of(conf);

	if (h->n_owned == h->cap_owned) {
		h->cap_owned = h->cap_owned ? h->cap_owned * 2 : 8;
		h->owned = xrealloc(h->owned,
		    h->cap_owned * sizeof(*h->owned));
	}
	h->owned[h->n_owned++] = p;
	return p;
}

void
keys_free(void *conf)
{
	struct keys_hdr *h;
	size_t i;

	if (conf == NULL)
		return;
	h = hdr_of(conf);
	for (i = 0; i < h->n_owned; i++)
		free(h->owned[i]);
	free(h->owned);
	explicit_bzero(conf, h->conf_size);
	free(h);
}

/* ------------------------------------------------------------------------ */
/* Small helpers */

const char *
keys_type_name(int type)
{
	static const char *const names[] = {
		NULL, "string", "int", "duration", "bool", "enum", "url",
		"host", "path", "secret", "list"
	};

	if (type < WP_KT_STRING || type > WP_KT_LIST)
		return "?";
	return names[type];
}

static int
text_type(int type)
{
	return type == WP_KT_STRING || type == WP_KT_URL ||
	    type == WP_KT_HOST || type == WP_KT_PATH || type == WP_KT_SECRET;
}

/* The C storage a key of K's type and flags needs. */
static size_t
storage_of(const struct wp_key *k)
{
	if (k->type == WP_KT_LIST || (k->flags & WP_KEY_MULTI))
		return sizeof(struct wp_list);
	switch (k->type) {
	case WP_KT_INT:
	case WP_KT_DURATION:
		return sizeof(int64_t);
	case WP_KT_BOOL:
	case WP_KT_ENUM:
		return sizeof(int);
	default:
		return sizeof(const char *);
	}
}

static size_t
align_of(const struct wp_key *k)
{
	if (k->type == WP_KT_LIST || (k->flags & WP_KEY_MULTI))
		return alignof(struct wp_list);
	switch (k->type) {
	case WP_KT_INT:
	case WP_KT_DURATION:
		return alignof(int64_t);
	case WP_KT_BOOL:
	case WP_KT_ENUM:
		return alignof(int);
	default:
		return alignof(const char *);
	}
}

const struct wp_key *
keys_find(const struct wp_key *keys, size_t n_keys, size_t key_size,
    const char *name)
{
	const char *k;
	size_t i;

	/* The first byte before strcmp(): a section's keys are looked up
	 * in tables of twenty or more, for every line (issue 17, S8). */
	for (i = 0; keys != NULL && i < n_keys; i++) {
		k = KEYS_AT(keys, key_size, i)->name;
		if (k[0] == name[0] && strcmp(k, name) == 0)
			return KEYS_AT(keys, key_size, i);
	}
	return NULL;
}

const char *
keys_suggest(const char *word, const char *const *a, const char *const *b)
{
	const char *const *lists[2] = { a, b };
	const char *best = NULL;
	int bestd = INT_MAX, d, l;
	size_t wl = strlen(word), cl;

	for (l = 0; l < 2; l++) {
		const char *const *c;
		for (c = lists[l]; c != NULL && *c != NULL; c++) {
			cl = strlen(*c);
			if (strcasecmp(word, *c) == 0)
				d = 0;
			else if ((d = edit_distance(word, *c)) > 2 &&
			    !(wl >= 3 && cl >= 3 &&
			    strncmp(word, *c, wl < cl ? wl : cl) == 0))
				continue;
			if (d < bestd) {
				bestd = d;
				best = *c;
			}
		}
	}
	return best;
}

const char *
keys_mean_text(const char *s, char *buf, size_t len)
{
	if (s == NULL)
		return "";
	snprintf(buf, len, " (did you mean \"%s\"?)", s);
	return buf;
}

char *
keys_resolve_path(const char *dir, const char *value)
{
	size_t dl = dir != NULL ? strlen(dir) : 0;

	if (value[0] == '/' || dl == 0)
		return xstrdup(value);
	if (dir[dl - 1] == '/')
		return xasprintf("%s%s", dir, value);
	return xasprintf("%s/%s", dir, value);
}

/* K for a key "K_file" (K non-empty) in BUF, else NULL. */
static const char *
file_key_base(const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key), sl = sizeof(FILE_SUFFIX) - 1;

	if (kl <= sl || kl - sl >= len ||
	    strcmp(key + kl - sl, FILE_SUFFIX) != 0)
		return NULL;
	memcpy(buf, key, kl - sl);
	buf[kl - sl] = '\0';
	return buf;
}

/* "a, b or c" of a NULL-terminated list, into BUF. */
static const char *
word_list(const char *const *v, char *buf, size_t len)
{
	size_t n, i, off = 0;

	buf[0] = '\0';
	for (n = 0; v != NULL && v[n] != NULL; n++)
		;
	for (i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    i == 0 ? "" : i + 1 == n ? " or " : ", ", v[i]);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Secrets in files */

/*
 * The file form of a key's value.  TEXT (a STRING key: a template, a
 * body) may hold several lines and be readable by anyone; anything else
 * may hold a token, so it must be one line that other users can neither
 * read nor write.  0 and *out (malloc'd), or WP_EINVAL with why.
 */
static int
read_value_file(const char *path, int text, char **out, char *why,
    size_t whylen)
{
	const char *bad = NULL;
	char *buf = NULL;
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd, rc = WP_EINVAL;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0 || fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot read %s: %s", QSTR(path),
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode))
		bad = "is not a regular file";
	else if (!text && (st.st_mode & (S_IROTH | S_IWOTH)))
		bad = "is readable or writable by other users: a secret must "
		    "not be (chmod o-rw)";
	if (bad != NULL)
		goto done;
	buf = xmalloc(SECRET_MAX + 1);
	while (n <= SECRET_MAX &&
	    (r = read(fd, buf + n, SECRET_MAX + 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "cannot read %s: %s",
			    QSTR(path), strerror(errno));
			goto done;
		}
		n += (size_t)r;
	}
	if (n > SECRET_MAX)
		bad = "is larger than 64 KiB";
	else {
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
		if (n == 0)
			bad = "is empty";
		else if (memchr(buf, '\0', n) != NULL)
			bad = "contains a NUL byte";
		else if (!text && strpbrk(buf, "\r\n") != NULL)
			bad = "holds more than one line";
	}
	if (bad != NULL)
		goto done;
	*out = xstrdup(buf);
	rc = 0;
done:
	if (bad != NULL)
		snprintf(why, whylen, "%s %s", QSTR(path), bad);
	if (buf != NULL) {
		explicit_bzero(buf, SECRET_MAX + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int
cfg_read_secret(const char *path, char **out, char *why, size_t whylen)
{
	return read_value_file(path, 0, out, why, whylen);
}

/* ------------------------------------------------------------------------ */
/* Values */

/* The inclusive range of an INT or DURATION key (us for durations). */
static void
key_range(const struct wp_key *k, int64_t *min, int64_t *max)
{
	if (k->min != 0 || k->max != 0) {
		*min = k->min;
		*max = k->max;
	} else if (k->type == WP_KT_DURATION) {
		*min = 0;
		*max = DURATION_MAX_MS * 1000;
	} else {
		*min = INT64_MIN;
		*max = INT64_MAX;
	}
}

/* An absolute URL "scheme://host[:port][/...]" with an accepted scheme;
 * 0, or WP_EINVAL with a message in MSG.  The message never quotes the
 * URL: its userinfo or query may hold credentials. */
static int
check_url(const struct wp_key *k, const char *name, const char *v,
    char *msg, size_t len)
{
	static const char *const web[] = { "http", "https", NULL };
	const char *const *schemes = k->values != NULL ? k->values : web;
	const char *p, *host, *end, *at;
	char words[256];
	size_t sl, i;

	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			goto bad;
	for (p = v; isalnum((unsigned char)*p) || *p == '+' || *p == '-' ||
	    *p == '.'; p++)
		;
	if (p == v || !isalpha((unsigned char)*v) || strncmp(p, "://", 3) != 0)
		goto bad;
	sl = (size_t)(p - v);
	for (i = 0; schemes[i] != NULL; i++)
		if (strlen(schemes[i]) == sl &&
		    strncasecmp(schemes[i], v, sl) == 0)
			break;
	if (schemes[i] == NULL) {
		snprintf(msg, len, "%s: the scheme must be %s", name,
		    word_list(schemes, words, sizeof(words)));
		return WP_EINVAL;
	}
	host = p + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	if (host == end || *host == ':') {
		snprintf(msg, len, "%s: the URL has no host", name);
		return WP_EINVAL;
	}
	return 0;
bad:
	snprintf(msg, len, "%s: not a valid absolute URL (no spaces or "
	    "control characters; use e.g. %s://host/path)", name, schemes[0]);
	return WP_EINVAL;
}

/* A host name, an IPv4 address or an IPv6 address (bare or in []). */
static int
check_host(const char *name, const char *v, char *msg, size_t len)
{
	unsigned char addr[16];
	char v6[64];
	size_t n = strlen(v), i;

	if (strchr(v, ':') != NULL) {
		if (v[0] == '[' && n > 2 && v[n - 1] == ']' && n - 2 < sizeof(v6)) {
			memcpy(v6, v + 1, n - 2);
			v6[n - 2] = '\0';
		} else if (n < sizeof(v6))
			memcpy(v6, v, n + 1);
		else
			goto bad;
		if (inet_pton(AF_INET6, v6, addr) == 1)
			return 0;
		goto bad;
	}
	if (n > HOST_MAX || v[0] == '.' || v[0] == '-')
		goto bad;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '-' &&
		    v[i] != '.' && v[i] != '_')
			goto bad;
	return 0;
bad:
	snprintf(msg, len, "%s: \"%s\" is not a host name, IPv4 or IPv6 "
	    "address", name, QSTR(v));
	return WP_EINVAL;
}

/*
 * Parse V (written under the key NAME, which is K's name or its KEY_file
 * form) as K's type into *slot: for text types a string owned by CONF,
 * for the others the number.  A SECRET's value is never put in MSG.
 * 0, or WP_EINVAL with a message in MSG.
 */
static int
parse_value(const struct wp_key *k, const char *name, const char *v,
    const char *dir, void *conf, void *slot, char *msg, size_t len)
{
	char buf[64], words[512];
	int64_t ms, min, max;
	long long n;
	size_t i;
	int b;

	if (v[0] == '\0' && k->type != WP_KT_STRING) {
		snprintf(msg, len, "%s: no value", name);
		return WP_EINVAL;
	}
	switch (k->type) {
	case WP_KT_INT:
		key_range(k, &min, &max);
		if (parse_int(v, min, max, &n) != 0) {
			if (min == INT64_MIN && max == INT64_MAX)
				snprintf(msg, len, "%s: \"%s\" is not a whole "
				    "number", name, QSTR(v));
			else
				snprintf(msg, len, "%s: \"%s\" is not a whole "
				    "number from %lld to %lld", name, QSTR(v),
				    (long long)min, (long long)max);
			return WP_EINVAL;
		}
		*(int64_t *)slot = n;
		return 0;
	case WP_KT_DURATION:
		key_range(k, &min, &max);
		if (parse_duration(v, &ms) != 0) {
			snprintf(msg, len, "%s: \"%s\" is not a duration ("
			    DURATION_FORMS ")", name, QSTR(v));
			return WP_EINVAL;
		}
		if (ms * 1000 < min) {
			format_duration((min + 999) / 1000, buf, sizeof(buf));
			snprintf(msg, len, "%s: \"%s\" is too short (minimum "
			    "%s)", name, QSTR(v), buf);
			return WP_EINVAL;
		}
		if (ms * 1000 > max) {
			format_duration(max / 1000, buf, sizeof(buf));
			snprintf(msg, len, "%s: \"%s\" is too long (maximum "
			    "%s)", name, QSTR(v), buf);
			return WP_EINVAL;
		}
		*(int64_t *)slot = ms * 1000;
		return 0;
	case WP_KT_BOOL:
		if (parse_bool(v, &b) != 0) {
			snprintf(msg, len, "%s: \"%s\" is not a boolean (use "
			    "true or false)", name, QSTR(v));
			return WP_EINVAL;
		}
		*(int *)slot = b;
		return 0;
	case WP_KT_ENUM:
		for (i = 0; k->values[i] != NULL; i++) {
			if (strcasecmp(v, k->values[i]) == 0) {
				*(int *)slot = (int)i;
				return 0;
			}
		}
		snprintf(msg, len, "%s: \"%s\" is not a valid value (use %s)",
		    name, QSTR(v), word_list(k->values, words, sizeof(words)));
		return WP_EINVAL;
	case WP_KT_URL:
		if (check_url(k, name, v, msg, len) != 0)
			return WP_EINVAL;
		break;
	case WP_KT_HOST:
		if (check_host(name, v, msg, len) != 0)
			return WP_EINVAL;
		break;
	case WP_KT_PATH:
		*(const char **)slot = own(conf, keys_resolve_path(dir, v));
		return 0;
	default:
		break;
	}
	*(const char **)slot = own(conf, xstrdup(v));
	return 0;
}

/* Append ITEM (owned by CONF already) to the list at L. */
static void
list_push(void *conf, struct wp_list *l, const char *item)
{
	const char **v = (const char **)l->v;
	struct keys_hdr *h = hdr_of(conf);
	size_t i;

	/* The array is owned by conf: replace its entry when it grows. */
	for (i = 0; v != NULL && i < h->n_owned; i++)
		if (h->owned[i] == (void *)v)
			break;
	v = xrealloc(v, (l->n + 2) * sizeof(*v));
	if (l->v == NULL)
		own(conf, v);
	else
		h->owned[i] = v;
	v[l->n++] = item;
	v[l->n] = NULL;
	l->v = v;
}

/*
 * One line's value for K into conf: a LIST splits and appends, a MULTI
 * appends one item, the others set the member.  0, or WP_EINVAL with MSG.
 */
static int
store_value(const struct wp_key *k, const char *name, const char *v,
    const char *dir, void *conf, char *msg, size_t len)
{
	void *slot = (char *)conf + k->offset;
	struct wp_list *l = slot;
	char *copy, *item, *next, *e;
	const char *s;
	int rc = 0;

	if (k->type == WP_KT_LIST) {
		if (v[0] == '\0') {
			snprintf(msg, len, "%s: no value", name);
			return WP_EINVAL;
		}
		copy = xstrdup(v);
		for (item = copy; item != NULL; item = next) {
			if ((next = strchr(item, ',')) != NULL)
				*next++ = '\0';
			while (isspace((unsigned char)*item))
				item++;
			e = item + strlen(item);
			while (e > item && isspace((unsigned char)e[-1]))
				*--e = '\0';
			if (*item == '\0') {
				snprintf(msg, len, "%s: empty item in \"%s\"",
				    name, QSTR(v));
				rc = WP_EINVAL;
				break;
			}
			list_push(conf, l, own(conf, xstrdup(item)));
		}
		free(copy);
		return rc;
	}
	if (k->flags & WP_KEY_MULTI) {
		if (parse_value(k, name, v, dir, conf, &s, msg, len) != 0)
			return WP_EINVAL;
		list_push(conf, l, s);
		return 0;
	}
	return parse_value(k, name, v, dir, conf, slot, msg, len);
}

/* ------------------------------------------------------------------------ */
/* Table checks */

static int
valid_key_name(const struct wp_key *k)
{
	const char *s = k->name;
	size_t n = s != NULL ? strlen(s) : 0, sl = sizeof(FILE_SUFFIX) - 1;

	if (n == 0 || !(*s >= 'a' && *s <= 'z'))
		return 0;
	for (; *s != '\0'; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') &&
		    *s != '_')
			return 0;
	/* "x_file" is the file form of a text key x; only a path key may
	 * carry the suffix itself (ca_file: the path of a PEM bundle, many
	 * lines, not a secret), and only when no key x exists (below). */
	return !(n > sl && strcmp(s - sl, FILE_SUFFIX) == 0) ||
	    k->type == WP_KT_PATH;
}

int
keys_check_table(const struct wp_plugin *p, char *why, size_t whylen)
{
	const struct wp_key *k;
	char msg[MSG_MAX];
	void *conf = NULL;
	size_t i, j;
	int rc = WP_EINVAL;

	if (p->n_keys == 0)
		return 0;
	if (p->keys == NULL) {
		snprintf(why, whylen, "n_keys is %zu but keys is NULL",
		    p->n_keys);
		return WP_EINVAL;
	}
	if (p->key_size < sizeof(struct wp_key)) {
		snprintf(why, whylen, "key_size %zu is smaller than a 2.0 "
		    "struct wp_key (%zu bytes): use WP_KEYS()", p->key_size,
		    sizeof(struct wp_key));
		return WP_EINVAL;
	}
	conf = conf_new(p->conf_size);
	for (i = 0; i < p->n_keys; i++) {
		k = KEYS_AT(p->keys, p->key_size, i);
		if (k->size < sizeof(struct wp_key) || k->size > p->key_size) {
			snprintf(why, whylen, "key %zu: size %zu is not a 2.0 "
			    "struct wp_key within the stride: use WP_KEY()", i,
			    k->size);
			goto done;
		}
		if (!valid_key_name(k)) {
			snprintf(why, whylen, "key %zu: name \"%s\" must be "
			    "[a-z][a-z0-9_]* and not end in \"_file\" (only a "
			    "path key may)", i, QSTR(k->name));
			goto done;
		}
		for (j = 0; j < p->n_keys; j++) {
			const char *o = KEYS_AT(p->keys, p->key_size, j)->name;
			size_t ol = o != NULL ? strlen(o) : 0;

			if (j < i && strcmp(o, k->name) == 0) {
				snprintf(why, whylen, "key \"%s\" is listed "
				    "twice", k->name);
				goto done;
			}
			if (j != i && o != NULL && strncmp(o, k->name, ol) == 0 &&
			    strcmp(k->name + ol, FILE_SUFFIX) == 0) {
				snprintf(why, whylen, "key \"%s\" would hide the "
				    "file form of key \"%s\"", k->name, o);
				goto done;
			}
		}
		if (k->type < WP_KT_STRING || k->type > WP_KT_LIST) {
			snprintf(why, whylen, "key \"%s\": unknown type %d",
			    k->name, k->type);
			goto done;
		}
		if ((k->flags & ~(WP_KEY_REQUIRED | WP_KEY_MULTI)) != 0 ||
		    ((k->flags & WP_KEY_MULTI) && !text_type(k->type))) {
			snprintf(why, whylen, "key \"%s\": flags %#x are not "
			    "valid for a %s key", k->name, k->flags,
			    keys_type_name(k->type));
			goto done;
		}
		if (k->storage != storage_of(k) ||
		    k->offset % align_of(k) != 0 ||
		    k->offset > p->conf_size ||
		    p->conf_size - k->offset < k->storage) {
			snprintf(why, whylen, "key \"%s\": a %s%s needs %zu "
			    "aligned bytes inside the %zu-byte conf (offset "
			    "%zu, storage %zu)", k->name,
			    keys_type_name(k->type),
			    (k->flags & WP_KEY_MULTI) ? " list" : "",
			    storage_of(k), p->conf_size, k->offset,
			    k->storage);
			goto done;
		}
		if (k->min > k->max) {
			snprintf(why, whylen, "key \"%s\": min > max", k->name);
			goto done;
		}
		if (k->type == WP_KT_ENUM &&
		    (k->values == NULL || k->values[0] == NULL)) {
			snprintf(why, whylen, "key \"%s\": an enum needs "
			    "values", k->name);
			goto done;
		}
		if (k->def != NULL && store_value(k, k->name, k->def, "/",
		    conf, msg, sizeof(msg)) != 0) {
			snprintf(why, whylen, "key \"%s\": the default does "
			    "not parse: %s", k->name, msg);
			goto done;
		}
	}
	rc = 0;
done:
	keys_free(conf);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Filling a section */

int
keys_line(const struct cfg_kv *kv, size_t n_kv, const char *key)
{
	char base[128];
	const char *b;
	size_t i;

	for (i = 0; i < n_kv; i++) {
		if (kv[i].key[0] != key[0])
			continue; /* neither KEY nor KEY_file */
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].line;
		b = file_key_base(kv[i].key, base, sizeof(base));
		if (b != NULL && strcmp(b, key) == 0)
			return kv[i].line;
	}
	return 0;
}

static int
in_list(const char *const *l, const char *s)
{
	for (; l != NULL && *l != NULL; l++)
		if ((*l)[0] == s[0] && strcmp(*l, s) == 0)
			return 1;
	return 0;
}

/*
 * Parsed defaults of INT, DURATION and BOOL keys, so that a table's
 * defaults are not parsed again for every section: 16 of the 21 values a
 * monitor's three fills store are defaults (issue 17, S8).  Direct-mapped
 * by the key's address; a hit must match the key's type, flags, range
 * and default text, so another table at a freed one's address misses.
 * Per thread, so no lock.
 */
#define DEFCACHE_SIZE 128
struct defcache {
	const struct wp_key *k;
	int type;
	unsigned flags;
	int64_t min, max;
	char def[24];
	unsigned char bytes[sizeof(int64_t)];
};
static _Thread_local struct defcache defcache[DEFCACHE_SIZE];

/* store_value() of K's default into CONF, through the cache above. */
static int
store_default(const struct wp_key *k, const char *dir, void *conf,
    char *msg, size_t len)
{
	struct defcache *e;
	size_t n = storage_of(k), dl = strlen(k->def);
	int rc;

	if ((k->type != WP_KT_INT && k->type != WP_KT_DURATION &&
	    k->type != WP_KT_BOOL) || (k->flags & WP_KEY_MULTI) ||
	    dl >= sizeof(e->def) || n > sizeof(e->bytes))
		return store_value(k, k->name, k->def, dir, conf, msg, len);
	e = &defcache[((uintptr_t)k / sizeof(void *)) % DEFCACHE_SIZE];
	if (e->k == k && e->type == k->type && e->flags == k->flags &&
	    e->min == k->min && e->max == k->max &&
	    memcmp(e->def, k->def, dl + 1) == 0) {
		memcpy((char *)conf + k->offset, e->bytes, n);
		return 0;
	}
	rc = store_value(k, k->name, k->def, dir, conf, msg, len);
	if (rc != 0)
		return rc;
	e->k = k;
	e->type = k->type;
	e->flags = k->flags;
	e->min = k->min;
	e->max = k->max;
	memcpy(e->def, k->def, dl + 1);
	memcpy(e->bytes, (char *)conf + k->offset, n);
	return 0;
}

void *
keys_fill(const struct wp_key *keys, size_t n_keys, size_t key_size,
    size_t conf_size, const char *file, const char *dir,
    const struct cfg_kv *kv, size_t n_kv, struct wp_diag *d)
{
	return keys_fill_in(NULL, keys, n_keys, key_size, conf_size, file,
	    dir, kv, n_kv, d);
}

void *
keys_fill_in(const struct keys_ctx *ctx, const struct wp_key *keys,
    size_t n_keys, size_t key_size, size_t conf_size, const char *file,
    const char *dir, const struct cfg_kv *kv, size_t n_kv,
    struct wp_diag *d)
{
	static const struct keys_ctx none;
	const struct wp_key *k;
	const struct cfg_kv *f;
	const char *prev_file = d->file, *base, *value, **names = NULL;
	char basebuf[128], mean[160], msg[MSG_MAX], why[PATH_MAX + 128];
	char *path, *secret;
	/* per key: 1 + the index in kv of the line that set it, or 0 (on
	 * the stack for tables up to FIRST_MAX keys: no allocation per
	 * section) */
	enum { FIRST_MAX = 64 };
	size_t first_buf[FIRST_MAX], *first;
	int errors = d->errors;
	size_t i, j;
	void *conf;

	if (ctx == NULL)
		ctx = &none;
	if (file != NULL)
		d->file = file;
	conf = conf_new(conf_size);
	if (n_keys <= FIRST_MAX) {
		first = first_buf;
		memset(first, 0, n_keys * sizeof(*first));
	} else
		first = xcalloc(n_keys + 1, sizeof(*first));

	for (i = 0; i < n_kv; i++) {
		value = kv[i].value;
		secret = NULL;
		k = keys_find(keys, n_keys, key_size, kv[i].key);
		if (k == NULL && (base = file_key_base(kv[i].key, basebuf,
		    sizeof(basebuf))) != NULL &&
		    (k = keys_find(keys, n_keys, key_size, base)) != NULL &&
		    !text_type(k->type))
			k = NULL;
		if (k == NULL) {
			/* The table's names, for the suggestion: only once a
			 * key is unknown. */
			if (names == NULL) {
				names = xcalloc(n_keys + 1, sizeof(*names));
				for (j = 0; j < n_keys; j++)
					names[j] = KEYS_AT(keys, key_size,
					    j)->name;
			}
			diag_error(d, kv[i].line, "unknown key \"%s\"%s%s",
			    QSTR(kv[i].key), ctx->what != NULL ? ctx->what : "",
			    keys_mean_text(keys_suggest(kv[i].key, names,
			    ctx->others), mean, sizeof(mean)));
			continue;
		}
		j = (size_t)(((const char *)k - (const char *)keys) / key_size);
		if (first[j] != 0 && !(k->flags & WP_KEY_MULTI) &&
		    k->type != WP_KT_LIST) {
			f = &kv[first[j] - 1];
			if (strcmp(f->key, k->name) != 0 ||
			    strcmp(kv[i].key, k->name) != 0)
				diag_error(d, kv[i].line, "%s: \"%s\" is already "
				    "set at line %d (use one of %s and %s_file)",
				    kv[i].key, k->name, f->line, k->name,
				    k->name);
			else
				diag_error(d, kv[i].line, "duplicate key \"%s\" "
				    "(first set at line %d)", kv[i].key,
				    f->line);
			continue;
		}
		if (first[j] == 0)
			first[j] = i + 1;
		if (strcmp(kv[i].key, k->name) != 0) {
			/* KEY_file = PATH: the value is the file's line. */
			path = keys_resolve_path(dir, value);
			if (read_value_file(path, k->type == WP_KT_STRING,
			    &secret, why, sizeof(why)) != 0) {
				diag_error(d, kv[i].line, "%s: %s", kv[i].key,
				    why);
				free(path);
				continue;
			}
			free(path);
			value = secret;
		}
		if (store_value(k, kv[i].key, value, dir, conf, msg,
		    sizeof(msg)) != 0)
			diag_error(d, kv[i].line, "%s", msg);
		if (secret != NULL) {
			explicit_bzero(secret, strlen(secret));
			free(secret);
		}
	}

	for (i = 0; i < n_keys; i++) {
		k = KEYS_AT(keys, key_size, i);
		if (first[i] != 0 || in_list(ctx->others, k->name))
			continue;
		if (k->flags & WP_KEY_REQUIRED) {
			diag_error(d, ctx->line, "%s is missing the required "
			    "key \"%s\"%s", ctx->section != NULL ?
			    ctx->section : "the section", k->name,
			    ctx->what != NULL ? ctx->what : "");
			continue;
		}
		/* keys_check_table() made sure a plugin's default parses
		 * (test-keys checks the host's own). */
		if (k->def != NULL && store_default(k, dir, conf, msg,
		    sizeof(msg)) != 0)
			diag_error(d, ctx->line, "default of %s", msg);
		/* An ENUM not set and without a default is -1 (plugin.h). */
		if (k->def == NULL && k->type == WP_KT_ENUM)
			*(int *)(void *)((char *)conf + k->offset) = -1;
	}
	if (first != first_buf)
		free(first);
	free(names);
	d->file = prev_file;
	if (d->errors != errors) {
		keys_free(conf);
		return NULL;
	}
	return conf;
}
