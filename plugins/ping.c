#include <watchpost/plugin.h>
static const struct wp_plugin desc = { WP_PLUGIN_HEADER, .name = "ping" };
WP_PLUGIN_DEFINE(ping, desc)
