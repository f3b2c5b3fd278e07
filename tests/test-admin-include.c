/*
 * test-admin-include -- [agent] include (core/cfg.c, cfg-read.c): the main
 * file, then every *.ini of the folder in name order; hidden and other
 * files left alone; a duplicate across files and [agent] in an included
 * file are FILE:LINE errors naming both places; each file's problems name
 * it, in file order; and the overlay the admin API judges a new file with
 * (replace, hide, add).  A fake lookup knows the check type tcp.
 */
#include "config.h"

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

#include "cfg.h"
#include "util.h"

struct tcp_conf {
	const char *host;
	int64_t port;
};
static const struct wp_key tcp_keys[] = {
	{ WP_KEY(WP_KT_HOST, "host", struct tcp_conf, host),
	  .flags = WP_KEY_REQUIRED },
	{ WP_KEY(WP_KT_INT, "port", struct tcp_conf, port),
	  .flags = WP_KEY_REQUIRED, .min = 1, .max = 65535 },
};
static const struct wp_plugin tcp = {
	.magic = WP_PLUGIN_MAGIC, .abi_major = WP_ABI_MAJOR,
	.abi_minor = WP_ABI_MINOR, .size = sizeof(struct wp_plugin),
	.name = "tcp", .kind = WP_PLUGIN_CHECK,
	WP_KEYS(tcp_keys, struct tcp_conf)
};

static const struct wp_plugin *
lookup(void *arg, const char *dir, int kind, const char *type, char *why,
    size_t len)
{
	(void)arg;
	(void)dir;
	if (kind == WP_PLUGIN_CHECK && strcmp(type, "tcp") == 0)
		return &tcp;
	snprintf(why, len, "no such plugin");
	return NULL;
}

static char dir[64];

static void
put(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void
drop(const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);

	unlink(path);
	free(path);
}

#define MON(n) "[monitor:" n "]\ntype = tcp\nhost = 127.0.0.1\nport = 1\n"

static int
setup(void **state)
{
	char *d;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/wp-include.XXXXXX");
	assert_non_null(mkdtemp(dir));
	d = xasprintf("%s/conf.d", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	free(d);
	put("main.ini", "[agent]\nlisten = off\ninclude = conf.d\n\n"
	    MON("main"));
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

/* Load DIR/main.ini with OV; returns the rc, *cfg and the report. */
static int
load(const struct cfg_overlay *ov, struct config **cfg, char **report)
{
	struct wp_diag d;
	char *main_ini = xasprintf("%s/main.ini", dir);
	int rc;

	diag_init(&d, NULL);
	rc = config_load_overlay(main_ini, NULL, lookup, NULL, ov, &d, cfg);
	*report = xstrdup(d.text != NULL ? d.text : "");
	diag_free(&d);
	free(main_ini);
	return rc;
}

/* The monitors' names in order, joined by ' '. */
static char *
order(const struct config *cfg)
{
	struct sbuf b = { NULL, 0, 0 };
	size_t i;

	for (i = 0; i < cfg->n_monitors; i++)
		sbuf_printf(&b, "%s ", cfg->monitors[i].s.name);
	return b.data != NULL ? sbuf_steal(&b) : xstrdup("");
}

static void
test_order(void **state)
{
	struct config *cfg;
	char *rep, *names, *f;

	(void)state;
	put("conf.d/b.ini", MON("b1") "\n" MON("b2"));
	put("conf.d/a.ini", MON("a"));
	put("conf.d/10.ini", MON("ten"));
	put("conf.d/.hidden.ini", MON("hidden"));
	put("conf.d/notes.txt", "[monitor:txt]\n");
	put("conf.d/x.ini.bak", MON("bak"));
	assert_int_equal(load(NULL, &cfg, &rep), 0);
	assert_string_equal(rep, "");
	names = order(cfg);
	/* Main first, then strcmp order of the names: "10" < "a" < "b". */
	assert_string_equal(names, "main ten a b1 b2 ");
	assert_int_equal(cfg->n_files, 4);
	f = xasprintf("%s/conf.d/b.ini", dir);
	assert_string_equal(cfg->monitors[3].s.file, f);
	assert_int_equal(cfg->monitors[3].s.file_no, 3);
	assert_int_equal(cfg->monitors[4].s.line, 6);
	assert_string_equal(cfg->monitors[4].s.file, f);
	assert_int_equal(cfg->monitors[0].s.file_no, 0);
	assert_int_equal(cfg->monitors[0].s.n_lines, 3);
	assert_string_equal(cfg->monitors[0].s.lines[0].key, "type");
	free(f);
	free(names);
	free(rep);
	config_free(cfg);
}

static void
test_errors(void **state)
{
	struct config *cfg;
	char *rep, *want;

	(void)state;
	put("conf.d/a.ini", "[monitor:x]\ntype = tcp\nhost = 127.0.0.1\n"
	    "port = 0\n");
	put("conf.d/b.ini", "\n" MON("main") "[agent]\n");
	assert_int_equal(load(NULL, &cfg, &rep), WP_EINVAL);
	/* Each file's problems name it; a.ini's before b.ini's, lines in
	 * order within each. */
	want = xasprintf("%s/conf.d/a.ini:4: port: \"0\" is not a whole number "
	    "from 1 to 65535\n"
	    "%s/conf.d/b.ini:2: duplicate monitor name \"main\" (first "
	    "defined at %s/main.ini:5)\n"
	    "%s/conf.d/b.ini:6: [agent] belongs in the main file "
	    "%s/main.ini, not in an included one\n", dir, dir, dir, dir, dir);
	assert_string_equal(rep, want);
	free(want);
	free(rep);
	config_free(cfg);
}

static void
test_missing_folder(void **state)
{
	struct config *cfg;
	char *rep, *want;

	(void)state;
	put("main.ini", "[agent]\nlisten = off\ninclude = nowhere\n");
	assert_int_equal(load(NULL, &cfg, &rep), WP_EINVAL);
	want = xasprintf("%s/main.ini:3: include: cannot read the folder "
	    "%s/nowhere: No such file or directory\n", dir, dir);
	assert_string_equal(rep, want);
	free(want);
	free(rep);
	config_free(cfg);
}

static void
test_overlay(void **state)
{
	struct cfg_overlay ov;
	struct config *cfg;
	char *rep, *names, *target, *src;

	(void)state;
	put("conf.d/b.ini", MON("b"));
	put("conf.d/.b.ini.new", MON("b") "retries = 7\n");
	put("conf.d/.a.ini.new", MON("a"));
	put("conf.d/.bad.new", "[monitor:b]\ntype = tcp\nportx = 1\n");
	target = xasprintf("%s/conf.d/b.ini", dir);

	/* Replace: b.ini is read from the staged file, named b.ini. */
	src = xasprintf("%s/conf.d/.b.ini.new", dir);
	ov = (struct cfg_overlay){ target, src };
	assert_int_equal(load(&ov, &cfg, &rep), 0);
	assert_int_equal(config_find_monitor(cfg, "b")->retries, 7);
	assert_string_equal(config_find_monitor(cfg, "b")->s.file, target);
	config_free(cfg);
	free(rep);
	free(src);

	/* Its problems name b.ini, not the staged file. */
	src = xasprintf("%s/conf.d/.bad.new", dir);
	ov = (struct cfg_overlay){ target, src };
	assert_int_equal(load(&ov, &cfg, &rep), WP_EINVAL);
	assert_non_null(strstr(rep, "/conf.d/b.ini:1: [monitor:b] is missing"));
	assert_non_null(strstr(rep, "/conf.d/b.ini:3: unknown key \"portx\""));
	assert_null(strstr(rep, ".bad.new"));
	config_free(cfg);
	free(rep);
	free(src);

	/* Hide: as if b.ini were gone. */
	ov = (struct cfg_overlay){ target, NULL };
	assert_int_equal(load(&ov, &cfg, &rep), 0);
	names = order(cfg);
	assert_string_equal(names, "main ");
	free(names);
	config_free(cfg);
	free(rep);
	free(target);

	/* Add: a.ini, not on disk, in its place in name order. */
	target = xasprintf("%s/conf.d/a.ini", dir);
	src = xasprintf("%s/conf.d/.a.ini.new", dir);
	ov = (struct cfg_overlay){ target, src };
	assert_int_equal(load(&ov, &cfg, &rep), 0);
	names = order(cfg);
	assert_string_equal(names, "main a b ");
	free(names);
	config_free(cfg);
	free(rep);
	free(src);
	free(target);
	drop("conf.d/.a.ini.new");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_folder, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overlay, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
