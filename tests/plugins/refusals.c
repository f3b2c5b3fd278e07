/*
 * Test-only plugins the loader must refuse.  One source, built once per
 * case with -DCASE_*, so each .so differs in exactly one way.
 */
#include <stddef.h>

#include <watchpost/plugin.h>

#if !defined(CASE_NOTPLUGIN)
static int
configure(void *state, const struct wp_section *sec, void **inst)
{
	(void)state;
	(void)sec;
	*inst = NULL;
	return WP_OK;
}

static int
check(void *inst, const struct wp_request *req, struct wp_result *res)
{
	(void)inst;
	(void)req;
	res->ok = 1;
	return WP_OK;
}

static const struct wp_key keys[] = { { NULL, 0, NULL } };
#endif

#if defined(CASE_NOTPLUGIN)
/* Exports something, but not the entry symbol. */
WP_EXPORT int not_a_watchpost_plugin(void);
int not_a_watchpost_plugin(void) { return 42; }
#else
static const struct wp_plugin desc = {
#if defined(CASE_BADMAGIC)
	0xdeadbeefu, WP_ABI_MAJOR, WP_ABI_MINOR, sizeof(struct wp_plugin),
	.name = "badmagic",
#elif defined(CASE_NEWMAJOR)
	WP_PLUGIN_MAGIC, WP_ABI_MAJOR + 1, 0, sizeof(struct wp_plugin),
	.name = "newmajor",
#elif defined(CASE_NEWMINOR)
	WP_PLUGIN_MAGIC, WP_ABI_MAJOR, WP_ABI_MINOR + 1,
	sizeof(struct wp_plugin),
	.name = "newminor",
#elif defined(CASE_MISNAMED)
	WP_PLUGIN_HEADER,
	.name = "somethingelse",
#endif
	.version = "test",
	.kind = WP_PLUGIN_CHECK,
	.keys = keys,
	.configure = configure,
	.check = check,
};
WP_PLUGIN_DEFINE(refusal, desc)
#endif
