/*
 * admin -- the live admin API under /api/monitors/NAME (watchpost(8)):
 * GET one monitor with its definition; PUT, PATCH and DELETE of the
 * monitors the API keeps in [agent] include as NAME.ini; POST .../pause,
 * .../resume and .../check.
 *
 * The write-then-notify rule: a change is judged with the code -t uses
 * (the whole configuration loaded with the new file in its place, and the
 * monitor's plugin), written atomically, and only then applied, through
 * the reload path SIGHUP takes.  The files are the truth: the running
 * set is always what a restart would load.  Everything here runs on the
 * loop thread, as SIGHUP's reload does, so API calls and reloads never
 * interleave: each applies whole before the next begins.
 */
#ifndef CORE_ADMIN_H
#define CORE_ADMIN_H

#include "api.h"
#include "cfg.h"
#include "diag.h"

/* What the daemon (main.c) lends the API: its reload, in two steps. */
struct admin_hooks {
	/* Load the configuration as a reload does, with OV in effect (NULL:
	 * none), plugins judging the sections when the core rejects it.
	 * Returns it (the caller owns it), or NULL with every problem in
	 * DIAG (initialised by it). */
	struct config *(*load)(const struct cfg_overlay *ov,
	    struct wp_diag *diag);
	/* Apply CFG as a reload does (the monitors' diff, [agent]); takes
	 * CFG over in every case.  Returns 0, or WP_EINVAL with the problems
	 * in DIAG, and then nothing changed. */
	int (*apply)(struct config *cfg, struct wp_diag *diag);
};

/* Set the hooks (copied), before the API serves. */
void admin_init(const struct admin_hooks *h);

/* api_routes.admin: answer REQ (loop thread). */
void admin_handle(void *arg, const struct api_request *req);

#endif
