/*
 * keys -- the one parser of configuration keys: a plugin's key table
 * (struct wp_key, walked with the plugin's stride) and the host's own
 * tables ([agent], the common monitor and alert keys) alike.
 *
 * A table says each key's type, flags, default, range or values; keys_fill()
 * turns a section's lines into the struct the table's offsets point into,
 * with typed values, and reports every problem as FILE:LINE: messages.
 * The value rules per type are those of <watchpost/plugin.h>; durations
 * are parsed by parse_duration() and booleans by parse_bool().
 */
#ifndef CORE_KEYS_H
#define CORE_KEYS_H

#include <stddef.h>

#include <watchpost/plugin.h>

/* One "key = value" line of a section, borrowed from the reader. */
struct cfg_kv {
	const char *key;
	const char *value;
	int line;
};

/*
 * Check a plugin's key table when it is loaded: the stride holds a 2.0
 * struct wp_key, every entry has a known type and flags, a storage size
 * equal to its type's C type, an aligned offset with offset + storage <=
 * conf_size, a name [a-z][a-z0-9_]* not ending in "_file" and not repeated,
 * a range with min <= max, values for an ENUM, and a default that parses.
 * Returns 0, or WP_EINVAL with one line in why naming the key.
 */
int keys_check_table(const struct wp_plugin *p, char *why, size_t whylen);

/*
 * What keys_fill_in() says about the section, for its messages.  Any field
 * may be NULL / 0.
 */
struct keys_ctx {
	const char *section;  /* "[monitor:web]": "... is missing the
	                       * required key ..." (NULL: "the section") */
	const char *what;     /* appended to "unknown key \"x\"" and to the
	                       * missing-key message: " for type http",
	                       * " in [agent]" */
	int line;             /* the section header's line, for missing keys */
	/* Keys the caller parses itself from the same section (the common
	 * keys): offered by "did you mean", and a table entry of the same
	 * name is never required here (the caller's key wins).
	 * NULL-terminated. */
	const char *const *others;
};

/*
 * Parse the section's lines KV (only this table's keys and their KEY_file
 * forms: the caller has taken out the keys it parses itself) into a newly
 * allocated, zeroed struct of conf_size bytes, with defaults applied.
 * Reports every problem to D as FILE:LINE: messages (FILE, when not NULL,
 * replaces d->file for them): an unknown key (with "did you mean"), a
 * missing required key, a repeated key without WP_KEY_MULTI, KEY and
 * KEY_file both set, a value that does not parse (naming its type and its
 * range or values; a SECRET's value is never quoted), an unreadable
 * KEY_file.  DIR resolves relative PATH values and KEY_file paths.
 * Returns the conf (free with keys_free(); every string and list in it is
 * owned by it), or NULL when anything was reported.
 */
void *keys_fill(const struct wp_key *keys, size_t n_keys, size_t key_size,
    size_t conf_size, const char *file, const char *dir,
    const struct cfg_kv *kv, size_t n_kv, struct wp_diag *d);
/* keys_fill() with the section's context for its messages (ctx may be
 * NULL: keys_fill()). */
void *keys_fill_in(const struct keys_ctx *ctx, const struct wp_key *keys,
    size_t n_keys, size_t key_size, size_t conf_size, const char *file,
    const char *dir, const struct cfg_kv *kv, size_t n_kv,
    struct wp_diag *d);
/* Free a conf from keys_fill() and everything in it.  NULL is fine. */
void keys_free(void *conf);

/* The line of the first line in KV that sets KEY (or KEY_file), or 0. */
int keys_line(const struct cfg_kv *kv, size_t n_kv, const char *key);

/* Entry I of a table walked with stride KEY_SIZE. */
#define KEYS_AT(keys, key_size, i)                                       \
	((const struct wp_key *)(const void *)((const char *)(keys) +    \
	    (size_t)(i) * (key_size)))

/* The entry named NAME in a table, or NULL. */
const struct wp_key *keys_find(const struct wp_key *keys, size_t n_keys,
    size_t key_size, const char *name);

/* The short name of a key type ("duration"), "?" if unknown. */
const char *keys_type_name(int type);

/*
 * The closest of the words in A and B (NULL-terminated lists, either may
 * be NULL) to WORD, for "did you mean": within edit distance 2, equal but
 * for case, or a common prefix of at least 3 characters.  NULL when
 * nothing is close.
 */
const char *keys_suggest(const char *word, const char *const *a,
    const char *const *b);

/* " (did you mean \"x\"?)" into BUF, or "" when S is NULL. */
const char *keys_mean_text(const char *s, char *buf, size_t len);

/*
 * Read a secret from PATH: a regular file that other users can neither read
 * nor write (as ssh treats a private key), holding one line of at most
 * 64 KiB (its trailing newline dropped), not empty.  Returns 0 and *out
 * (free() it), or WP_EINVAL with *out NULL and a one-line reason in WHY
 * that names PATH but never quotes the contents.  Used for KEY_file keys
 * and for [agent] api_token_file.
 */
int cfg_read_secret(const char *path, char **out, char *why, size_t whylen);

/*
 * The section the host hands to a plugin's configure(): the ABI's part
 * first, then the lines host->config_error() finds a key's line in.  The
 * plugin gets &ks->sec and passes it back, so the host reaches the rest.
 */
struct keys_section {
	struct wp_section sec;
	const struct cfg_kv *kv;   /* the plugin's lines (borrowed) */
	size_t n_kv;
};

/* An absolute path for VALUE: itself, or joined to DIR.  free() it. */
char *keys_resolve_path(const char *dir, const char *value);

#endif
