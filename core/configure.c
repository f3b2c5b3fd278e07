/*
 * configure -- building plugin instances from sections (see configure.h).
 */
#include "config.h"

#include <string.h>

#include "configure.h"
#include "keys.h"

int
configure_section(const struct plugin *p, const struct config *cfg,
    const struct cfg_section *s, int64_t timeout_ms, struct wp_diag *diag,
    struct configured *out)
{
	struct keys_section ks;
	const struct wp_plugin *d = &p->desc;
	const char *file = s->file != NULL ? s->file : cfg->file;
	const char *prev_file = diag->file;
	int prev_rank = diag->rank, rc = WP_EINVAL;
	void *conf, *inst = NULL;

	memset(out, 0, sizeof(*out));
	/* The section's problems name its own file (an included one). */
	diag->file = file;
	diag->rank = s->file_no;
	conf = keys_fill(d->keys, d->n_keys, d->key_size, d->conf_size,
	    file, cfg->dir, s->kv, s->n_kv, diag);
	if (conf == NULL)
		goto done;
	memset(&ks, 0, sizeof(ks));
	ks.sec.size = sizeof(ks.sec);
	ks.sec.name = s->name;
	ks.sec.file = file;
	ks.sec.line = s->line;
	ks.sec.timeout_us = timeout_ms * 1000;
	ks.sec.diag = diag;
	ks.sec.interval_us = s->interval_ms * 1000;
	ks.kv = s->kv;
	ks.n_kv = s->n_kv;
	if (d->configure(p->state, &ks.sec, conf, &inst) != WP_OK) {
		keys_free(conf);
		goto done;
	}
	out->inst = inst;
	out->conf = conf;
	rc = 0;
done:
	diag->file = prev_file;
	diag->rank = prev_rank;
	return rc;
}

void
configure_release(const struct plugin *p, void *inst, void *conf)
{
	if (p != NULL && p->desc.release != NULL)
		p->desc.release(p->state, inst);
	keys_free(conf);
}
