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
	void *conf, *inst = NULL;

	memset(out, 0, sizeof(*out));
	conf = keys_fill(d->keys, d->n_keys, d->key_size, d->conf_size,
	    cfg->file, cfg->dir, s->kv, s->n_kv, diag);
	if (conf == NULL)
		return WP_EINVAL;
	memset(&ks, 0, sizeof(ks));
	ks.sec.size = sizeof(ks.sec);
	ks.sec.name = s->name;
	ks.sec.file = cfg->file;
	ks.sec.line = s->line;
	ks.sec.timeout_us = timeout_ms * 1000;
	ks.sec.diag = diag;
	ks.kv = s->kv;
	ks.n_kv = s->n_kv;
	if (d->configure(p->state, &ks.sec, conf, &inst) != WP_OK) {
		keys_free(conf);
		return WP_EINVAL;
	}
	out->inst = inst;
	out->conf = conf;
	return 0;
}

void
configure_release(const struct plugin *p, void *inst, void *conf)
{
	if (p != NULL && p->desc.release != NULL)
		p->desc.release(p->state, inst);
	keys_free(conf);
}
