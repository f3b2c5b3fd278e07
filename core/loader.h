/*
 * loader -- finds, checks and loads plugins with libltdl.  The only file
 * that calls lt_dl*.  Main thread only; modules stay resident until exit.
 *
 * Every plugin is loaded at start-up (loader_load_dir(), called through
 * the first loader_lookup()), before any thread starts and before
 * privileges are dropped; loader_freeze() then ends loading, so a reload
 * naming a type that was not loaded is refused ("a new plugin needs a
 * restart").
 */
#ifndef CORE_LOADER_H
#define CORE_LOADER_H

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
 * Load every plugin file in DIR: T.so is the check type T, alert-T.so the
 * alert type T.  Each is checked (the directory's and the file's owner
 * and modes, magic, ABI version -- a 1.x plugin is refused naming both
 * versions --, name and kind against the file name, the key table with
 * keys_check_table()) and its init() called.  A file that fails is logged
 * and skipped; its reason is what a later lookup of its type says.  Does
 * nothing after loader_freeze() or when DIR was loaded already.  Each
 * file's load is a start-up operation, "load plugin TYPE" (or "load plugin
 * alert-TYPE"), in the registry (opmon.h): the loop must be initialised.
 * Main thread.  Returns the number of plugins it loaded.
 */
size_t loader_load_dir(const char *dir);

/* End start-up: from now on nothing is loaded. */
void loader_freeze(void);

/*
 * The loaded plugin of KIND named TYPE, or NULL after writing one line
 * into why: the file's load failure, "no plugin PATH (...)", or, after
 * loader_freeze(), "not loaded at start-up (a new plugin needs a
 * restart): PATH" for a file that appeared since.
 */
const struct plugin *loader_find(int kind, const char *type, char *why,
    size_t whylen);

/* A cfg_lookup_fn (arg unused): before loader_freeze() it first loads
 * DIR (loader_load_dir()); then loader_find(). */
const struct wp_plugin *loader_lookup(void *arg, const char *dir, int kind,
    const char *type, char *why, size_t whylen);

/* The loaded plugin whose descriptor is DESC (from loader_lookup). */
const struct plugin *loader_by_desc(const struct wp_plugin *desc);

/* Call every plugin's fini() (at exit, after all instances are gone). */
void loader_shutdown(void);

/* Iterate loaded plugins: i from 0 until NULL. */
const struct plugin *loader_at(size_t i);

#endif
