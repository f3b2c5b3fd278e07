#include <watchpost/plugin.h>
static const struct wp_plugin desc = { WP_PLUGIN_HEADER, .name = "alert-webhook" };
WP_PLUGIN_DEFINE(alert_webhook, desc)
