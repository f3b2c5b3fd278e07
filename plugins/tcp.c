#include <watchpost/plugin.h>
static const struct wp_plugin desc = { WP_PLUGIN_HEADER, .name = "tcp" };
WP_PLUGIN_DEFINE(tcp, desc)
