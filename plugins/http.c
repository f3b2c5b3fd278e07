#include <watchpost/plugin.h>
static const struct wp_plugin desc = { WP_PLUGIN_HEADER, .name = "http" };
WP_PLUGIN_DEFINE(http, desc)
