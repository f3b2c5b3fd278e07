#include "config.h"

#include <errno.h>
#include <ltdl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "loader.h"
#include "log.h"
#include "util.h"

/* Loaded plugins, and files that failed (so errors are not repeated). */
static struct plugin **plugins;
static size_t n_plugins;
static int lt_ready;

static const char *
kind_name(int kind)
{
	return kind == WP_PLUGIN_ALERT ? "alert" : "check";
}

/*
 * A plugin directory that others may write to lets anyone run code as
 * watchpost: refuse it, like sshd's StrictModes.
 */
static int
check_dir(const char *dir, char *why, size_t whylen)
{
	struct stat st;

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
	if (st.st_mode & S_IWOTH) {
		snprintf(why, whylen, "plugin directory %s is writable by "
		    "other users: refusing to load code from it (chmod o-w %s)",
		    dir, dir);
		return -1;
	}
	return 0;
}

static const struct plugin *
find_loaded(const char *path)
{
	size_t i;

	for (i = 0; i < n_plugins; i++)
		if (strcmp(plugins[i]->path, path) == 0)
			return plugins[i];
	return NULL;
}

const struct plugin *
loader_get(const char *dir, int kind, const char *type, char *why,
    size_t whylen)
{
	const struct wp_plugin *(*entry)(void);
	const struct wp_plugin *d;
	const struct plugin *have;
	struct plugin *p = NULL;
	lt_dlhandle dl = NULL;
	struct stat st;
	char *path;
	size_t i;
	int rc;

	/* A type is a file name: no path tricks. */
	for (i = 0; type[i] != '\0'; i++) {
		char c = type[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_')) {
			snprintf(why, whylen, "type \"%s\" is not a plugin name "
			    "(lowercase letters, digits, '-' and '_')", type);
			return NULL;
		}
	}
	if (i == 0) {
		snprintf(why, whylen, "empty type");
		return NULL;
	}
	path = wp_xasprintf("%s/%s%s.so", dir,
	    kind == WP_PLUGIN_ALERT ? "alert-" : "", type);
	if ((have = find_loaded(path)) != NULL) {
		free(path);
		if (have->desc.kind != kind) {
			snprintf(why, whylen, "%s is not a %s plugin",
			    have->path, kind_name(kind));
			return NULL;
		}
		return have;
	}
	if (check_dir(dir, why, whylen) != 0)
		goto fail;
	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "no plugin %s (the installed types are "
		    "the %s*.so files in %s)", path,
		    kind == WP_PLUGIN_ALERT ? "alert-" : "", dir);
		goto fail;
	}
	if (!lt_ready) {
		if (lt_dlinit() != 0) {
			snprintf(why, whylen, "libltdl: %s", lt_dlerror());
			goto fail;
		}
		lt_ready = 1;
	}
	/* lt_dlopen, not lt_dlopenext: the exact file, never a search path. */
	dl = lt_dlopen(path);
	if (dl == NULL) {
		snprintf(why, whylen, "%s: cannot load: %s", path, lt_dlerror());
		goto fail;
	}
	*(void **)&entry = lt_dlsym(dl, WP_PLUGIN_SYMBOL);
	if (entry == NULL || (d = entry()) == NULL ||
	    d->magic != WP_PLUGIN_MAGIC) {
		snprintf(why, whylen, "%s is not a watchpost plugin (no %s() "
		    "returning a descriptor with the watchpost magic): remove it "
		    "from %s", path, WP_PLUGIN_SYMBOL, dir);
		goto fail;
	}
	if (d->abi_major != WP_ABI_MAJOR || d->abi_minor > WP_ABI_MINOR) {
		snprintf(why, whylen, "%s was built for plugin ABI %u.%u, but "
		    "this watchpost (%s) provides ABI %d.%d: %s", path,
		    d->abi_major, d->abi_minor, PACKAGE_VERSION, WP_ABI_MAJOR,
		    WP_ABI_MINOR, d->abi_major != WP_ABI_MAJOR ?
		    "rebuild the plugin against this watchpost's plugin.h" :
		    "upgrade watchpost or use a plugin built for this version");
		goto fail;
	}
	p = wp_xcalloc(1, sizeof(*p));
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
	p->path = path;
	path = NULL;
	p->async = p->desc.start != NULL && p->desc.cancel != NULL;
	p->host = host_new(p->desc.name);
	if (p->desc.init != NULL &&
	    (rc = p->desc.init(p->host, &p->state)) != 0) {
		snprintf(why, whylen, "%s: plugin init failed (%d)", p->path, rc);
		host_free(p->host);
		path = p->path;
		goto fail;
	}
	plugins = wp_xrealloc(plugins, (n_plugins + 1) * sizeof(*plugins));
	plugins[n_plugins++] = p;
	wp_debug("plugin %s: loaded %s (version %s, ABI %u.%u)", p->desc.name,
	    p->path, p->desc.version ? p->desc.version : "?",
	    p->desc.abi_major, p->desc.abi_minor);
	return p;
fail:
	/* The module stays resident: unloading code that may have run
	 * constructors is riskier than keeping it. */
	free(p);
	free(path);
	return NULL;
}

const struct wp_plugin *
loader_lookup(void *arg, const char *dir, int kind, const char *type,
    char *why, size_t whylen)
{
	const struct plugin *p = loader_get(dir, kind, type, why, whylen);

	(void)arg;
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
	/* lt_dlexit() would unload the modules; plugins may have started
	 * library threads (curl's resolver) we cannot see, so keep them. */
}
