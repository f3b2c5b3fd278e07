/*
 * configure -- the one way to build a plugin instance from a section:
 * fill the section's plugin keys into the plugin's struct (keys_fill()),
 * then the plugin's configure().  The monitors (manager.c), the alert
 * sections (alert.c) and -t's check of a rejected file all build here.
 */
#ifndef CORE_CONFIGURE_H
#define CORE_CONFIGURE_H

#include <stdint.h>

#include "cfg.h"
#include "diag.h"
#include "loader.h"

/* A built instance: the plugin's instance and the conf it was configured
 * from, which lives as long as the instance (it may point into it). */
struct configured {
	void *inst;
	void *conf;
};

/*
 * Build the instance of section S (of CFG, whose folder resolves relative
 * paths) with plugin P; TIMEOUT_MS is the section's timeout.  Problems go
 * to DIAG as FILE:LINE: messages, the keys' and configure()'s alike.
 * Returns 0 and *out (free with configure_release()), or WP_EINVAL with
 * *out zeroed.  Main or loop thread (configure()'s rule).
 */
int configure_section(const struct plugin *p, const struct config *cfg,
    const struct cfg_section *s, int64_t timeout_ms, struct wp_diag *diag,
    struct configured *out);

/* The plugin's release() of INST, then the conf.  NULLs are fine. */
void configure_release(const struct plugin *p, void *inst, void *conf);

#endif
