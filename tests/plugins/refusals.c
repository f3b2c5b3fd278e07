/*
 * Test-only plugins the loader must refuse.  One source, built once per
 * case with -DCASE_*, so each .so differs in exactly one way.
 *
 * CASE_ABI1 is a plugin of the refused ABI 1.0: its descriptor is written
 * by hand with the 1.0 layout's leading fields (magic, abi_major 1,
 * abi_minor 0, size, name), not with the 2.0 macros.
 */
#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

#if defined(CASE_NOTPLUGIN)
/* Exports something, but not the entry symbol. */
WP_EXPORT int not_a_watchpost_plugin(void);
int not_a_watchpost_plugin(void) { return 42; }
#elif defined(CASE_ABI1)
/* The head of a 1.0 descriptor, as a 1.0 plugin's file holds it. */
struct v1_plugin {
	uint32_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	size_t size;
	const char *name;
	int kind;
	const char *version;
	const char *description;
	const void *keys;
};
static const struct v1_plugin desc = {
	WP_PLUGIN_MAGIC, 1, 0, sizeof(struct v1_plugin), "abi1",
	WP_PLUGIN_CHECK, "test", "a plugin built for ABI 1.0", NULL,
};
WP_EXPORT const void *watchpost_plugin(void);
const void *watchpost_plugin(void) { return &desc; }
#else
struct conf {
	int64_t n;
};

static int
configure(void *state, const struct wp_section *sec, const void *conf,
    void **inst)
{
	(void)state;
	(void)sec;
	(void)conf;
	*inst = NULL;
	return WP_OK;
}

static int
check(void *inst, const struct wp_request *req, struct wp_result *res)
{
	(void)inst;
	(void)req;
	res->reason = WP_REASON_OK;
	return WP_OK;
}

#if defined(CASE_BADKEYS)
/* A key whose storage does not fit its type. */
static const struct wp_key keys[] = {
	{ WP_KEY(WP_KT_BOOL, "n", struct conf, n) },
};
#else
static const struct wp_key keys[] = {
	{ WP_KEY(WP_KT_INT, "n", struct conf, n) },
};
#endif

#define FIELDS                                                            \
	.version = "test", .description = "refused",                       \
	WP_KEYS(keys, struct conf), .configure = configure, .check = check

#if defined(CASE_BADMAGIC)
static const struct wp_plugin desc = {
	0xdeadbeefu, WP_ABI_MAJOR, WP_ABI_MINOR, sizeof(struct wp_plugin),
	.name = "badmagic", .kind = WP_PLUGIN_CHECK, FIELDS };
WP_EXPORT const struct wp_plugin *watchpost_plugin(void);
const struct wp_plugin *watchpost_plugin(void) { return &desc; }
#elif defined(CASE_NEWMAJOR)
static const struct wp_plugin desc = {
	WP_PLUGIN_MAGIC, WP_ABI_MAJOR + 1, 0, sizeof(struct wp_plugin),
	.name = "newmajor", .kind = WP_PLUGIN_CHECK, FIELDS };
WP_EXPORT const struct wp_plugin *watchpost_plugin(void);
const struct wp_plugin *watchpost_plugin(void) { return &desc; }
#elif defined(CASE_NEWMINOR)
static const struct wp_plugin desc = {
	WP_PLUGIN_MAGIC, WP_ABI_MAJOR, WP_ABI_MINOR + 1,
	sizeof(struct wp_plugin),
	.name = "newminor", .kind = WP_PLUGIN_CHECK, FIELDS };
WP_EXPORT const struct wp_plugin *watchpost_plugin(void);
const struct wp_plugin *watchpost_plugin(void) { return &desc; }
#elif defined(CASE_MISNAMED)
WP_CHECK_PLUGIN(somethingelse, FIELDS)
#elif defined(CASE_BADKEYS)
WP_CHECK_PLUGIN(badkeys, FIELDS)
#endif
#endif
