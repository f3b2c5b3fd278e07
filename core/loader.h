/*
 * loader -- finds, checks and loads plugins with libltdl.  The only file
 * that calls lt_dl*.  Main thread only; modules stay resident until exit.
 */
#ifndef WP_LOADER_H
#define WP_LOADER_H

#include <stddef.h>

#include <watchpost/plugin.h>

/* A loaded, initialised plugin.  Owned by the loader. */
struct plugin {
	char *path;              /* the file it came from */
	struct wp_plugin desc;   /* the descriptor, copied by min(size) */
	void *state;             /* from desc.init */
	struct wp_host *host;    /* its host services table */
	int async;               /* has start/cancel */
};

/*
 * Load the plugin for TYPE of KIND (WP_PLUGIN_CHECK: DIR/TYPE.so,
 * WP_PLUGIN_ALERT: DIR/alert-TYPE.so), check it and call its init().
 * Loading the same file twice returns the same plugin.  Returns NULL after
 * writing one line into why: which file, what is wrong, what to do.
 */
const struct plugin *loader_get(const char *dir, int kind, const char *type,
    char *why, size_t whylen);

/* The same, with the signature cfg_lookup_fn expects (arg unused). */
const struct wp_plugin *loader_lookup(void *arg, const char *dir, int kind,
    const char *type, char *why, size_t whylen);

/* The loaded plugin whose descriptor is DESC (from loader_lookup). */
const struct plugin *loader_by_desc(const struct wp_plugin *desc);

/* Call every plugin's fini() (at exit, after all instances are gone). */
void loader_shutdown(void);

/* Iterate loaded plugins: i from 0 until NULL. */
const struct plugin *loader_at(size_t i);

#endif
