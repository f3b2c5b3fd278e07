/*
 * admin-ini -- the admin API's pure parts: a JSON request body into INI
 * key/value lines, merged and rendered as one monitor's file, its ETag,
 * and writing that file atomically.  No loop, no manager: the unit tests
 * and the fuzz target use it alone.
 *
 * The body is a JSON object of INI keys: a string, number or boolean is
 * one "key = value" line, an array one line per element (a repeatable key
 * such as http's header), null the key's absence (PATCH: remove it).
 * Nothing that INI cannot hold is let through: a key is a key name
 * ([a-z][a-z0-9_]*, no '=', ':', '[', blank or newline), and a value is
 * one line without control bytes or NUL, without blanks at its ends (the
 * reader trims them) and without " ;" or a leading ';' (an inline
 * comment after "key = ").  So no value
 * can start a section or another key, and what is written reads back as
 * sent.  Whether the keys make a valid monitor is judged by the
 * configuration's own code (cfg.c), not here.
 */
#ifndef CORE_ADMIN_INI_H
#define CORE_ADMIN_INI_H

#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

#define ADMIN_KEY_MAX 64

/* One line of a monitor's section; value NULL: the key is removed (only
 * in a PATCH body).  Strings owned. */
struct admin_kv {
	char *key;
	char *value;
};

/* A monitor's keys in file order (repeated keys repeat). */
struct admin_def {
	struct admin_kv *kv;
	size_t n;
};

/* Problems for a 422: key NULL when no single key is at fault. */
struct admin_err {
	char *key;
	char *message;
};
struct admin_errors {
	struct admin_err *v;
	size_t n;
};

/* Add one problem (KEY may be NULL; both copied). */
void admin_errors_add(struct admin_errors *e, const char *key,
    const char *fmt, ...) WP_PRINTF(3, 4);
/* {"errors":[{"key":...,"message":...},...]} (malloc'd). */
char *admin_errors_json(const struct admin_errors *e);
void admin_errors_free(struct admin_errors *e);

/*
 * Parse BODY (LEN bytes, any content) with jansson.  Returns 0 with *OUT
 * (free with admin_def_free), or WP_EINVAL with every problem in ERRS and
 * *OUT empty; *SYNTAX is set to 1 when the body is not JSON at all (a 400
 * rather than a 422).  Null members stay as value NULL.
 */
int admin_json_parse(const char *body, size_t len, struct admin_def *out,
    struct admin_errors *errs, int *syntax);

/* Why KEY cannot be an INI key here, or NULL when it can. */
const char *admin_key_problem(const char *key);
/* Why VALUE (LEN bytes) cannot be written as one INI value, or NULL. */
const char *admin_value_problem(const char *value, size_t len);

/*
 * PATCH: BASE with PATCH's keys merged into *OUT: a key in PATCH replaces
 * every line of that key in BASE (at the place of its first line; an array
 * gives several lines), null removes it, new keys go at the end in PATCH's
 * order.  PUT uses it with an empty BASE, which drops the nulls.
 */
void admin_def_merge(const struct admin_def *base,
    const struct admin_def *patch, struct admin_def *out);
/* Append KEY = VALUE (copied). */
void admin_def_add(struct admin_def *d, const char *key, const char *value);
/* Set KEY to VALUE: its first line takes VALUE, later ones go; appended
 * when absent. */
void admin_def_set(struct admin_def *d, const char *key, const char *value);
void admin_def_free(struct admin_def *d);

/*
 * The canonical file of monitor NAME: "[monitor:NAME]" on line 1, then
 * "key = value" per line in order (key i on line i + 2), newline-ended.
 * malloc'd.
 */
char *admin_ini_render(const char *name, const struct admin_def *d);

/* The ETag of canonical content TEXT: a quoted 64-bit FNV-1a hash in hex
 * ("\"0123456789abcdef\""), into BUF of at least ADMIN_ETAG_SIZE. */
#define ADMIN_ETAG_SIZE 24
void admin_etag(const char *text, char *buf, size_t len);
/* Does an If-Match header value (a list of tags, or "*") match ETAG?
 * EXISTS: the resource is there ("*" matches only then). */
int admin_if_match(const char *header, const char *etag, int exists);

/*
 * Writing a file atomically, in two steps so that the caller can judge
 * the new content before it counts.  admin_file_stage() writes TEXT to a
 * new temporary file in DIR (".NAME.ini.XXXXXX": not *.ini, so never
 * read as part of the configuration), mode 0600, and fsyncs it; *TMP is
 * its path (free() it).  admin_file_commit() renames TMP over PATH (in the
 * same DIR) and fsyncs DIR, so that after a crash PATH holds the old or
 * the new content, whole.  admin_file_remove() unlinks PATH and fsyncs
 * DIR (a missing PATH is not an error).  Each returns 0, or WP_EIO with
 * the reason in ERR (the temporary file is removed on failure).
 */
int admin_file_stage(const char *dir, const char *name, const char *text,
    char **tmp, char *err, size_t errlen);
int admin_file_commit(const char *tmp, const char *path, const char *dir,
    char *err, size_t errlen);
int admin_file_remove(const char *path, const char *dir, char *err,
    size_t errlen);

#endif
