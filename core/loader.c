/*
 * loader -- plugins are loaded once, at start-up, on the main thread:
 * every T.so and alert-T.so in plugin_dir, before any thread runs and
 * before privileges are dropped.  After loader_freeze() lookups only
 * consult what was loaded then.
 */

#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ltdl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "keys.h"
#include "loader.h"
#include "log.h"
#include "opmon.h"
#include "runtime.h"
#include "util.h"

/* Loaded plugins. */
static struct plugin **plugins;
static size_t n_plugins;
static int lt_ready;

static const char *
kind_name(int kind)
{
	return kind == WP_PLUGIN_ALERT ? "alert" : "check";
}

/* Is GID the user-private group of UID: the user's primary group, named
 * like the user, with no other members listed? */
static int
private_group(uid_t uid, gid_t gid)
{
	struct passwd *pw = getpwuid(uid);
	struct group *gr;
	char name[256];

	if (pw == NULL || pw->pw_gid != gid ||
	    strlen(pw->pw_name) >= sizeof(name))
		return 0;
	/* getgrgid() may reuse getpwuid()'s static storage. */
	strcpy(name, pw->pw_name);
	gr = getgrgid(gid);
	return gr != NULL && strcmp(gr->gr_name, name) == 0 &&
	    (gr->gr_mem == NULL || gr->gr_mem[0] == NULL);
}

/*
 * Can someone other than root and us change what ST (a plugin or its
 * directory) holds?  Like sshd's StrictModes: the owner must be root or
 * our effective user, nobody else may write, except a group that is the
 * owner's private group.  Returns NULL, or what is wrong.
 */
static const char *
unsafe_owner(const struct stat *st)
{
	if (st->st_mode & S_IWOTH)
		return "is writable by other users";
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "belongs to another user";
	if ((st->st_mode & S_IWGRP) && !private_group(st->st_uid, st->st_gid))
		return "is writable by its group";
	return NULL;
}

/*
 * A plugin directory that others may write to lets anyone run code as
 * watchpost: refuse it.
 */
static int
check_dir(const char *dir, char *why, size_t whylen)
{
	struct stat st;
	const char *bad;

	if (stat(dir, &st) != 0) {
		snprintf(why, whylen, "plugin directory %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "plugin directory %s is not a directory",
		    dir);
		return -1;
	}
	if ((bad = unsafe_owner(&st)) != NULL) {
		snprintf(why, whylen, "plugin directory %s %s: refusing to load "
		    "code from it (it must belong to root or to this user, and "
		    "only its owner may write to it: chmod go-w %s)", dir, bad,
		    dir);
		return -1;
	}
	return 0;
}

/*
 * The plugin file itself: the same rule as its directory, and it must be
 * in the directory -- a symbolic link that leads out of it is refused.
 */
static int
check_file(const char *dir, const char *path, const struct stat *st,
    char *why, size_t whylen)
{
	char *rdir = NULL, *rpath = NULL, *slash;
	const char *bad;
	int rc = -1;

	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		return -1;
	}
	if ((bad = unsafe_owner(st)) != NULL) {
		snprintf(why, whylen, "%s %s: refusing to load it (chmod go-w "
		    "%s)", path, bad, path);
		return -1;
	}
	if ((rdir = realpath(dir, NULL)) == NULL ||
	    (rpath = realpath(path, NULL)) == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto done;
	}
	slash = strrchr(rpath, '/');
	if (slash == NULL || (size_t)(slash - rpath) != strlen(rdir) ||
	    strncmp(rpath, rdir, strlen(rdir)) != 0) {
		/* "/" as the plugin directory: rdir "/" vs slash at 0. */
		if (!(strcmp(rdir, "/") == 0 && slash == rpath)) {
			snprintf(why, whylen, "%s leads to %s, outside the "
			    "plugin directory %s: refusing to load it", path,
			    rpath, dir);
			goto done;
		}
	}
	rc = 0;
done:
	free(rdir);
	free(rpath);
	return rc;
}

/*
 * Why lt_dlopen() refused PATH, into WHY.  lt_dlerror() holds only the
 * last of libltdl's loaders' errors, "file not found" whatever was wrong.
 * A file without the ELF magic is not a shared object at all; for one
 * with it, dlopen() tells (a missing library or symbol, a wrong
 * architecture), in a message that starts with the path, which WHY names
 * already.
 */
static void
load_error(const char *path, const char *dir, char *why, size_t whylen)
{
	const char *e, *lt = lt_dlerror();
	unsigned char magic[4];
	size_t pl = strlen(path);
	ssize_t n = -1;
	void *h;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) >= 0) {
		n = read(fd, magic, sizeof(magic));
		close(fd);
	}
	if (n >= 0 && (n < 4 || memcmp(magic, "\177ELF", 4) != 0)) {
		snprintf(why, whylen, "%s is not a shared object (no ELF "
		    "header): remove it from %s", path, dir);
		return;
	}
	(void)dlerror();
	/* lt_dlopen() just failed on it, binding lazily: dlopen() binding
	 * now is stricter, so it fails too, before the file's code runs. */
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
		dlclose(h);
	if (h != NULL || (e = dlerror()) == NULL)
		e = lt != NULL ? lt : "unknown error";
	if (strncmp(e, path, pl) == 0 && strncmp(e + pl, ": ", 2) == 0)
		e += pl + 2;
	snprintf(why, whylen, "%s: cannot load: %s", path, e);
}

/* A file of plugin_dir that failed to load, and why (for lookups). */
struct failed {
	int kind;
	char *type;
	char *why;
};
static struct failed *failed;
static size_t n_failed;
static char *loaded_dir;        /* the directory loader_load_dir() read */
static char *dir_why;           /* why that directory was refused, or NULL */
static int frozen;

/*
 * Load and check PATH, the plugin for TYPE of KIND, and call its init().
 * Returns the plugin (kept in plugins[]), or NULL after writing one line
 * into why: which file, what is wrong, what to do.
 */
static struct plugin *
load_file(const char *dir, const char *path, int kind, const char *type,
    char *why, size_t whylen)
{
	const struct wp_plugin *(*entry)(void);
	const struct wp_plugin *d;
	struct plugin *p = NULL;
	lt_dlhandle dl = NULL;
	struct stat st;
	int rc;

	if (lstat(path, &st) != 0 || (S_ISLNK(st.st_mode) &&
	    stat(path, &st) != 0)) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (check_file(dir, path, &st, why, whylen) != 0)
		return NULL;
	if (!lt_ready) {
		if (lt_dlinit() != 0) {
			snprintf(why, whylen, "libltdl: %s", lt_dlerror());
			return NULL;
		}
		lt_ready = 1;
	}
	/* lt_dlopen, not lt_dlopenext: the exact file, never a search path. */
	dl = lt_dlopen(path);
	if (dl == NULL) {
		load_error(path, dir, why, whylen);
		return NULL;
	}
	*(void **)&entry = lt_dlsym(dl, WP_PLUGIN_SYMBOL);
	if (entry == NULL || (d = entry()) == NULL ||
	    d->magic != WP_PLUGIN_MAGIC) {
		snprintf(why, whylen, "%s is not a watchpost plugin (no %s() "
		    "returning a descriptor with the watchpost magic): remove it "
		    "from %s", path, WP_PLUGIN_SYMBOL, dir);
		return NULL;
	}
	/* magic, abi_major and abi_minor lead the descriptor in every ABI:
	 * they are all that is read before the versions agree. */
	if (d->abi_major != WP_ABI_MAJOR) {
		snprintf(why, whylen, "%s: built for plugin ABI %u.%u; this "
		    "watchpost needs ABI %d.x: rebuild it against "
		    "<watchpost/plugin.h> %d.x", path, d->abi_major,
		    d->abi_minor, WP_ABI_MAJOR, WP_ABI_MAJOR);
		return NULL;
	}
	if (d->abi_minor > WP_ABI_MINOR) {
		snprintf(why, whylen, "%s: built for plugin ABI %u.%u; this "
		    "watchpost (%s) provides ABI %d.%d: upgrade watchpost or "
		    "use a plugin built for ABI %d.%d", path, d->abi_major,
		    d->abi_minor, PACKAGE_VERSION, WP_ABI_MAJOR, WP_ABI_MINOR,
		    WP_ABI_MAJOR, WP_ABI_MINOR);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	/* Copy what the plugin has; fields it predates stay zero / NULL. */
	memcpy(&p->desc, d, d->size < sizeof(p->desc) ? d->size :
	    sizeof(p->desc));
	if (p->desc.name == NULL || strcmp(p->desc.name, type) != 0) {
		snprintf(why, whylen, "%s calls itself \"%s\", not \"%s\": a "
		    "plugin's name must match its file name", path,
		    p->desc.name ? p->desc.name : "(null)", type);
		goto fail;
	}
	if (p->desc.kind != kind) {
		snprintf(why, whylen, "%s is a %s plugin, but its file name "
		    "makes it a %s plugin%s", path, kind_name(p->desc.kind),
		    kind_name(kind), kind == WP_PLUGIN_ALERT ? "" :
		    " (alert plugins are named alert-TYPE.so)");
		goto fail;
	}
	if (p->desc.configure == NULL || (p->desc.check == NULL &&
	    (p->desc.start == NULL || p->desc.cancel == NULL))) {
		snprintf(why, whylen, "%s has no configure() or no way to run "
		    "an operation (start and cancel, or check)", path);
		goto fail;
	}
	if (keys_check_table(&p->desc, why, whylen) != 0) {
		char *k = xstrdup(why);
		snprintf(why, whylen, "%s: bad key table: %s", path, k);
		free(k);
		goto fail;
	}
	p->path = xstrdup(path);
	p->async = p->desc.start != NULL && p->desc.cancel != NULL;
	p->host = host_new(p->desc.name, runtime_complete);
	if (p->desc.init != NULL &&
	    (rc = p->desc.init(p->host, &p->state)) != 0) {
		snprintf(why, whylen, "%s: plugin init failed (%d)", p->path, rc);
		host_free(p->host);
		free(p->path);
		goto fail;
	}
	plugins = xrealloc(plugins, (n_plugins + 1) * sizeof(*plugins));
	plugins[n_plugins++] = p;
	log_debug("plugin %s: loaded %s (version %s, ABI %u.%u)", p->desc.name,
	    p->path, p->desc.version ? p->desc.version : "?",
	    p->desc.abi_major, p->desc.abi_minor);
	return p;
fail:
	/* The module stays resident: unloading code that may have run
	 * constructors is riskier than keeping it. */
	free(p);
	return NULL;
}

/* Kind and type of a plugin file name: "T.so" or "alert-T.so", T of
 * [a-z0-9_-].  0, or -1 for a file that is not a plugin's. */
static int
parse_file_name(const char *name, int *kind, char *type, size_t len)
{
	size_t n = strlen(name), i;
	const char *t = name;

	if (n <= 3 || strcmp(name + n - 3, ".so") != 0 || name[0] == '.')
		return -1;
	*kind = WP_PLUGIN_CHECK;
	if (strncmp(name, "alert-", 6) == 0) {
		*kind = WP_PLUGIN_ALERT;
		t += 6;
	}
	n = strlen(t) - 3;
	if (n == 0 || n >= len)
		return -1;
	for (i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') ||
		    (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_'))
			return -1;
	memcpy(type, t, n);
	type[n] = '\0';
	return 0;
}

/* Deadline of loading one plugin, a start-up step: one that ends past it
 * counts as timed out (the loop is not running yet to stop it). */
#define LOAD_STEP_MS 30000

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
loader_load_dir(const char *dir)
{
	struct dirent *de;
	struct failed *f;
	char why[1024], type[256], step[300], *path, **names = NULL;
	struct opmon_op *op;
	size_t i, n = 0, loaded = 0;
	int kind;
	DIR *dp;

	if (frozen || (loaded_dir != NULL && strcmp(loaded_dir, dir) == 0))
		return 0;
	free(loaded_dir);
	loaded_dir = xstrdup(dir);
	free(dir_why);
	dir_why = NULL;
	dp = NULL;
	if (check_dir(dir, why, sizeof(why)) != 0 ||
	    ((dp = opendir(dir)) == NULL && snprintf(why, sizeof(why),
	    "plugin directory %s: %s", dir, strerror(errno)) > 0)) {
		dir_why = xstrdup(why);
		log_warn("%s", why);
		return 0;
	}
	/* In name order, so the log and init() order do not depend on the
	 * file system. */
	while ((de = readdir(dp)) != NULL) {
		if (parse_file_name(de->d_name, &kind, type, sizeof(type)) != 0)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		parse_file_name(names[i], &kind, type, sizeof(type));
		path = xasprintf("%s/%s", dir, names[i]);
		snprintf(step, sizeof(step), "load plugin %s%s",
		    kind == WP_PLUGIN_ALERT ? "alert-" : "", type);
		op = opmon_begin(OPC_STARTUP, step, LOAD_STEP_MS);
		if (load_file(dir, path, kind, type, why, sizeof(why)) != NULL) {
			opmon_end(op, OP_SUCCEEDED, NULL);
			loaded++;
		} else {
			opmon_end(op, OP_FAILED, why);
			log_warn("plugin %s skipped: %s", names[i], why);
			failed = xrealloc(failed,
			    (n_failed + 1) * sizeof(*failed));
			f = &failed[n_failed++];
			f->kind = kind;
			f->type = xstrdup(type);
			f->why = xstrdup(why);
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return loaded;
}

void
loader_freeze(void)
{
	frozen = 1;
}

const struct plugin *
loader_find(int kind, const char *type, char *why, size_t whylen)
{
	struct stat st;
	char *path;
	size_t i;

	for (i = 0; i < n_plugins; i++)
		if (plugins[i]->desc.kind == kind &&
		    strcmp(plugins[i]->desc.name, type) == 0)
			return plugins[i];
	for (i = 0; i < n_failed; i++) {
		if (failed[i].kind == kind && strcmp(failed[i].type, type) == 0) {
			snprintf(why, whylen, "%s", failed[i].why);
			return NULL;
		}
	}
	if (loaded_dir == NULL) {
		snprintf(why, whylen, "no plugins were loaded");
		return NULL;
	}
	if (dir_why != NULL) {
		snprintf(why, whylen, "%s", dir_why);
		return NULL;
	}
	path = xasprintf("%s/%s%s.so", loaded_dir,
	    kind == WP_PLUGIN_ALERT ? "alert-" : "", type);
	if (frozen && stat(path, &st) == 0)
		snprintf(why, whylen, "not loaded at start-up (a new plugin "
		    "needs a restart): %s", path);
	else
		snprintf(why, whylen, "no plugin %s (the installed types are "
		    "the %s*.so files in %s)", path,
		    kind == WP_PLUGIN_ALERT ? "alert-" : "", loaded_dir);
	free(path);
	return NULL;
}

const struct wp_plugin *
loader_lookup(void *arg, const char *dir, int kind, const char *type,
    char *why, size_t whylen)
{
	const struct plugin *p;

	(void)arg;
	if (!frozen)
		loader_load_dir(dir);
	p = loader_find(kind, type, why, whylen);
	return p ? &p->desc : NULL;
}

const struct plugin *
loader_by_desc(const struct wp_plugin *desc)
{
	size_t i;

	for (i = 0; i < n_plugins; i++)
		if (&plugins[i]->desc == desc)
			return plugins[i];
	return NULL;
}

const struct plugin *
loader_at(size_t i)
{
	return i < n_plugins ? plugins[i] : NULL;
}

void
loader_shutdown(void)
{
	size_t i;

	for (i = 0; i < n_plugins; i++) {
		struct plugin *p = plugins[i];
		if (p->desc.fini != NULL)
			p->desc.fini(p->state);
		host_free(p->host);
		free(p->path);
		free(p);
	}
	free(plugins);
	plugins = NULL;
	n_plugins = 0;
	for (i = 0; i < n_failed; i++) {
		free(failed[i].type);
		free(failed[i].why);
	}
	free(failed);
	failed = NULL;
	n_failed = 0;
	free(loaded_dir);
	loaded_dir = NULL;
	free(dir_why);
	dir_why = NULL;
	/* lt_dlexit() would unload the modules; plugins may have started
	 * library threads (curl's resolver) we cannot see, so keep them. */
}
