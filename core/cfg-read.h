/*
 * cfg-read -- the configuration file's line reader: whole lines of any
 * length, counted, fed through the system inih, into raw sections (kind,
 * name, key/value/line in file order).  Private to cfg.c; validation is
 * cfg.c's.
 */
#ifndef CORE_CFG_READ_H
#define CORE_CFG_READ_H

#include <stddef.h>

#include "diag.h"
#include "keys.h"

enum cfg_kind { CFG_AGENT, CFG_MONITOR, CFG_ALERT, CFG_STATUS,
	CFG_MAINTENANCE, CFG_CLUSTER };
/* [agent] and [status] have no name and appear at most once. */
#define cfg_single(kind) ((kind) == CFG_AGENT || (kind) == CFG_STATUS || \
	(kind) == CFG_CLUSTER)

/* One section as written.  kv's strings are owned: each line's key and
 * value are one allocation, the key's. */
struct cfg_raw_section {
	int kind;               /* enum cfg_kind */
	char *name;             /* NULL for [agent] */
	int line;               /* of the header */
	struct cfg_kv *kv;
	size_t n_kv;
	int file;               /* index into cfg_raw.files */
};

struct cfg_raw {
	struct cfg_raw_section *secs; /* in file order; at most one agent */
	size_t n_secs;
	/* Open-addressed index of secs by (kind, name): slot = index + 1,
	 * 0 empty.  Keeps the duplicate-name check linear in the file. */
	size_t *by_name;
	size_t by_name_size;    /* a power of two, or 0 */
	/* The files read, in order (owned): the main file first, then the
	 * include folder's ([agent] include). */
	char **files;
	size_t n_files;
	size_t cap_secs;
};

/*
 * Read FILE into RAW (zeroed by the caller), reporting every malformed line
 * to D at its line (d->file names FILE).  Returns 0, or WP_EINVAL when the
 * file could not be opened or read (reported as "FILE: message"; RAW then
 * holds what was read).  Problems with single lines do not fail the read:
 * they are only in D.
 */
int cfg_read(const char *file, struct cfg_raw *raw, struct wp_diag *d);
/*
 * cfg_read() of one more file: its sections are appended to RAW (which
 * may hold other files' already) with the next file index, and named
 * FILE in RAW and in messages, while the text is read from PATH (the
 * admin API validates a file before it takes FILE's place).  A section
 * named as one of another file is reported as a duplicate naming both
 * places; [agent] is refused in every file but the first.
 */
int cfg_read_from(const char *file, const char *path, struct cfg_raw *raw,
    struct wp_diag *d);
/* Free the lines (kv) of RAW's section I, which keeps its name and place
 * (cfg_raw_find() still finds it). */
void cfg_raw_drop_kv(struct cfg_raw *raw, size_t i);
void cfg_raw_free(struct cfg_raw *raw);

/* The section of KIND named NAME (NULL for [agent], [status]), or NULL. */
const struct cfg_raw_section *cfg_raw_find(const struct cfg_raw *raw,
    int kind, const char *name);

/* The longest [monitor:] or [alert:] name, bytes: with
 * cfg_valid_name(NAME, "._-") the section name rule, which the admin API
 * applies to the names in its URLs too. */
#define CFG_NAME_MAX 128

/* A name of [A-Za-z0-9] plus the characters in `extra`, non-empty. */
int cfg_valid_name(const char *s, const char *extra);
/* S without its leading and trailing blanks: a pointer into S, whose
 * trailing blanks are overwritten with the NUL. */
char *cfg_trim(char *s);

#endif
