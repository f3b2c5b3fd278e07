/*
 * test-loader -- core/loader.c against the test plugins: every file of a
 * plugin directory loaded at start-up, each refusal's message (an ABI 1.0
 * plugin names both versions), and after loader_freeze() a plugin that
 * appeared since is refused with "a new plugin needs a restart".
 *
 * The plugins are copied into a fresh folder of our own (the loader
 * refuses folders others may write to).
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host.h"
#include "loader.h"
#include "util.h"

static const char *const files[] = {
	"abi1.so", "badkeys.so", "badmagic.so", "blocking.so", "misnamed.so",
	"newmajor.so", "newminor.so", "notplugin.so",
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

static char dir[PATH_MAX / 2];

static void
copy(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	in = open(from, O_RDONLY);
	assert_true(in >= 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

static int
group_setup(void **state)
{
	const char *src = getenv("WP_TEST_PLUGIN_DIR"), *t = getenv("TMPDIR");
	char a[PATH_MAX], b[PATH_MAX];
	size_t i;

	/* Each load is a start-up operation, with a deadline on the loop. */
	if (src == NULL || host_loop_init() != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/test-loader.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (i = 0; i < N_FILES; i++) {
		snprintf(a, sizeof(a), "%s/%s", src, files[i]);
		snprintf(b, sizeof(b), "%s/%s", dir, files[i]);
		copy(a, b);
	}
	/* Not a plugin's name: never tried. */
	snprintf(b, sizeof(b), "%s/README", dir);
	copy(a, b);
	return 0;
}

static int
group_teardown(void **state)
{
	char p[PATH_MAX];
	size_t i;

	loader_shutdown();
	for (i = 0; i < N_FILES; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/README", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/late.so", dir);
	unlink(p);
	return rmdir(dir);
}

/* Looking TYPE up fails with "DIR/" + SUFFIX. */
static void
expect_refused(const char *type, const char *suffix)
{
	char why[1024], *want = xasprintf("%s/%s", dir, suffix);

	assert_null(loader_find(WP_PLUGIN_CHECK, type, why, sizeof(why)));
	assert_string_equal(why, want);
	free(want);
}

static void
test_load_dir(void **state)
{
	const struct plugin *p;
	char why[1024];

	/* Of eight files one is a good plugin. */
	assert_int_equal(loader_load_dir(dir), 1);
	/* The same folder again: nothing more. */
	assert_int_equal(loader_load_dir(dir), 0);
	p = loader_find(WP_PLUGIN_CHECK, "blocking", why, sizeof(why));
	assert_non_null(p);
	assert_string_equal(p->desc.name, "blocking");
	assert_int_equal(p->desc.n_keys, 6);
	assert_ptr_equal(loader_at(0), p);
	assert_null(loader_at(1));
	assert_ptr_equal(loader_by_desc(&p->desc), p);
	/* A check type is not an alert type. */
	assert_null(loader_find(WP_PLUGIN_ALERT, "blocking", why,
	    sizeof(why)));
}

static void
test_refusals(void **state)
{
	char *want;

	expect_refused("abi1", "abi1.so: built for plugin ABI 1.0; this "
	    "watchpost needs ABI 2.x: rebuild it against "
	    "<watchpost/plugin.h> 2.x");
	expect_refused("newmajor", "newmajor.so: built for plugin ABI 3.0; "
	    "this watchpost needs ABI 2.x: rebuild it against "
	    "<watchpost/plugin.h> 2.x");
	want = xasprintf("newminor.so: built for plugin ABI 2.%d; this "
	    "watchpost (%s) provides ABI 2.%d: upgrade watchpost or use a "
	    "plugin built for ABI 2.%d", WP_ABI_MINOR + 1, PACKAGE_VERSION,
	    WP_ABI_MINOR, WP_ABI_MINOR);
	expect_refused("newminor", want);
	free(want);
	expect_refused("misnamed", "misnamed.so calls itself "
	    "\"somethingelse\", not \"misnamed\": a plugin's name must match "
	    "its file name");
	want = xasprintf("badkeys.so: bad key table: key \"n\": a bool "
	    "needs %zu aligned bytes inside the 8-byte conf (offset 0, "
	    "storage 8)", sizeof(int));
	expect_refused("badkeys", want);
	free(want);
	want = xasprintf("badmagic.so is not a watchpost plugin (no "
	    "watchpost_plugin() returning a descriptor with the watchpost "
	    "magic): remove it from %s", dir);
	expect_refused("badmagic", want);
	free(want);
	want = xasprintf("nosuch.so (the installed types are the *.so "
	    "files in %s)", dir);
	{
		char why[1024], *full = xasprintf("no plugin %s/%s", dir,
		    want);
		assert_null(loader_find(WP_PLUGIN_CHECK, "nosuch", why,
		    sizeof(why)));
		assert_string_equal(why, full);
		free(full);
	}
	free(want);
}

static void
test_frozen(void **state)
{
	char src[PATH_MAX], dst[PATH_MAX], why[1024], *want;

	loader_freeze();
	snprintf(src, sizeof(src), "%s/blocking.so", dir);
	snprintf(dst, sizeof(dst), "%s/late.so", dir);
	copy(src, dst);
	/* A lookup never loads once frozen, whatever folder it names. */
	assert_null(loader_lookup(NULL, dir, WP_PLUGIN_CHECK, "late", why,
	    sizeof(why)));
	want = xasprintf("not loaded at start-up (a new plugin needs a "
	    "restart): %s", dst);
	assert_string_equal(why, want);
	free(want);
	assert_int_equal(loader_load_dir("/"), 0);
	assert_non_null(loader_lookup(NULL, dir, WP_PLUGIN_CHECK, "blocking",
	    why, sizeof(why)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_frozen),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
