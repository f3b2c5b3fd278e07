/*
 * admin -- the live admin API (see admin.h).
 *
 * Which monitors the API may change: those whose section is the only one
 * in INCLUDE/NAME.ini.  A monitor defined anywhere else (the main file,
 * another included file) answers 409 naming its FILE:LINE: the person who
 * wrote that file owns it.  A change goes:
 *
 *   1. the new file's text from the body (admin-ini.c), staged as a
 *      temporary file in the folder (fsync'd);
 *   2. the whole configuration loaded as a reload loads it, with the
 *      staged file in NAME.ini's place (config_load_overlay), and the
 *      monitor's section handed to its plugin's configure(): the very
 *      checks of -t.  Any problem: 422, and nothing is written;
 *   3. rename over NAME.ini and fsync of the folder (DELETE: unlink and
 *      fsync);
 *   4. the reload's apply: the manager's diff by name, [agent] as SIGHUP
 *      applies it.  Should it still fail, the old file is put back.
 *
 * A change therefore applies whatever else the files say now, as SIGHUP
 * would: the files are the truth.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "admin-ini.h"
#include "admin.h"
#include "cfg-read.h"
#include "configure.h"
#include "loader.h"
#include "log.h"
#include "manager.h"
#include "outcome.h"
#include "util.h"

#define HTTP_OK 200
#define HTTP_CREATED 201
#define HTTP_NO_CONTENT 204
#define HTTP_BAD_REQUEST 400
#define HTTP_NOT_FOUND 404
#define HTTP_METHOD_NOT_ALLOWED 405
#define HTTP_CONFLICT 409
#define HTTP_PRECONDITION_FAILED 412
#define HTTP_UNPROCESSABLE 422
#define HTTP_INTERNAL 500
#define HTTP_UNAVAILABLE 503

#define PREFIX "/api/monitors/"
#define MASK "********"
/* A check run on request answers within its worst case plus this, and
 * never waits longer than CHECK_WAIT_MAX_MS. */
#define CHECK_SLACK_MS 10000
#define CHECK_WAIT_MAX_MS 600000

static struct admin_hooks hooks;

void
admin_init(const struct admin_hooks *h)
{
	hooks = *h;
}

/* ---- answers ---- */

static void answer_error(struct api_job *j, unsigned status, const char *fmt,
    ...) WP_PRINTF(3, 4);

/* {"error": MESSAGE} with STATUS. */
static void
answer_error(struct api_job *j, unsigned status, const char *fmt, ...)
{
	va_list ap;
	json_t *o;
	char *msg, *body;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		fputs("watchpost: out of memory\n", stderr);
		abort();
	}
	va_end(ap);
	o = json_object();
	json_object_set_new(o, "error", json_string(msg));
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(msg);
	api_answer(j, status, body, NULL, NULL);
}

static void
answer_json(struct api_job *j, unsigned status, json_t *o, const char *etag)
{
	char *body = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	api_answer(j, status, body, etag != NULL ? "ETag" : NULL, etag);
}

/* ---- which monitor, where ---- */

/* The monitor a request names and where its file is or would be. */
struct target {
	char name[CFG_NAME_MAX + 1];
	const struct config *cfg;        /* in force */
	const struct cfg_monitor *m;     /* its definition in force, or NULL */
	const char *dir;                 /* [agent] include, or NULL */
	char *path;                      /* DIR/NAME.ini, or NULL */
	/* Its file on disk (read_file): */
	int exists;
	struct admin_def def;            /* the section's lines */
	char *text;                      /* canonical content, or NULL */
	char etag[ADMIN_ETAG_SIZE];
};

static void
target_free(struct target *t)
{
	free(t->path);
	free(t->text);
	admin_def_free(&t->def);
}

/* Is T's definition in force the API's own (or absent)? */
static int
managed(const struct target *t)
{
	return t->m == NULL || (t->path != NULL && t->m->s.file != NULL &&
	    strcmp(t->m->s.file, t->path) == 0);
}

/*
 * Read T's file, if any, into t->def, t->text and t->etag.  Returns 0, or
 * WP_EINVAL with the reason in WHY when the file holds anything but the
 * one section [monitor:NAME] (the API never overwrites what it cannot
 * write back) or cannot be read.
 */
static int
read_file(struct target *t, char *why, size_t whylen)
{
	struct cfg_raw raw;
	struct wp_diag d;
	struct stat st;
	const struct cfg_raw_section *rs;
	size_t i;
	int rc = WP_EINVAL;

	if (stat(t->path, &st) != 0 && errno == ENOENT)
		return 0;
	memset(&raw, 0, sizeof(raw));
	diag_init(&d, t->path);
	if (cfg_read(t->path, &raw, &d) != 0 || d.errors > 0) {
		snprintf(why, whylen, "%s cannot be read as a monitor's file: "
		    "%.*s", t->path, d.len > 0 ? (int)d.len - 1 : 0,
		    d.text != NULL ? d.text : "");
		goto done;
	}
	rs = raw.n_secs == 1 ? &raw.secs[0] : NULL;
	if (rs == NULL || rs->kind != CFG_MONITOR ||
	    strcmp(rs->name, t->name) != 0) {
		snprintf(why, whylen, "%s holds other sections than "
		    "[monitor:%s]: edit it by hand", t->path, t->name);
		goto done;
	}
	for (i = 0; i < rs->n_kv; i++)
		admin_def_add(&t->def, rs->kv[i].key, rs->kv[i].value);
	t->exists = 1;
	t->text = admin_ini_render(t->name, &t->def);
	admin_etag(t->text, t->etag, sizeof(t->etag));
	rc = 0;
done:
	diag_free(&d);
	cfg_raw_free(&raw);
	return rc;
}

/* 409 for a monitor the API does not own: where it is defined. */
static void
answer_not_managed(struct api_job *j, const struct target *t)
{
	answer_error(j, HTTP_CONFLICT, "monitor %s is defined at %s:%d; edit "
	    "that file instead (the API changes only the monitors it keeps "
	    "in %s)", t->name, t->m->s.file != NULL ? t->m->s.file :
	    t->cfg->file, t->m->s.line, t->dir != NULL ? t->dir :
	    "[agent] include");
}

/* ---- the definition, as GET shows it ---- */

/* VALUE of a URL key with a password in its user part masked (malloc'd). */
static char *
mask_url(const char *value)
{
	const char *auth = strstr(value, "://"), *at, *colon, *end;

	if (auth == NULL)
		return xstrdup(value);
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (colon == NULL)
		return xstrdup(value);
	return xasprintf("%.*s" MASK "%s", (int)(colon + 1 - value), value, at);
}

/* Line KEY = VALUE of section S as shown: a SECRET masked, a URL's
 * password masked (malloc'd). */
static char *
shown_value(const struct cfg_section *s, const char *key, const char *value)
{
	const struct wp_plugin *p = s->plugin;
	const struct wp_key *k = NULL;

	if (p != NULL)
		k = keys_find(p->keys, p->n_keys, p->key_size, key);
	if (k != NULL && k->type == WP_KT_SECRET)
		return xstrdup(MASK);
	if (k != NULL && k->type == WP_KT_URL)
		return mask_url(value);
	return xstrdup(value);
}

/* Monitor NAME as /api/monitors shows it, with where and how it is
 * defined; NULL if it is not running. */
static json_t *
monitor_view(const char *name)
{
	const struct config *cfg = manager_config();
	const struct cfg_monitor *m = config_find_monitor(cfg, name);
	json_t *o = manager_monitor_json(name), *def, *prev, *arr;
	const struct cfg_kv *kv;
	char *v;
	size_t i;

	if (o == NULL || m == NULL) {
		json_decref(o);
		return NULL;
	}
	def = json_object();
	for (i = 0; i < m->s.n_lines; i++) {
		kv = &m->s.lines[i];
		v = shown_value(&m->s, kv->key, kv->value);
		prev = json_object_get(def, kv->key);
		/* A repeated key is an array, as a PUT takes it. */
		if (prev == NULL)
			json_object_set_new(def, kv->key, json_string(v));
		else if (json_is_array(prev))
			json_array_append_new(prev, json_string(v));
		else {
			arr = json_array();
			json_array_append(arr, prev);
			json_array_append_new(arr, json_string(v));
			json_object_set_new(def, kv->key, arr);
		}
		free(v);
	}
	json_object_set_new(o, "definition", def);
	json_object_set_new(o, "file", json_string(m->s.file != NULL ?
	    m->s.file : cfg->file));
	json_object_set_new(o, "line", json_integer(m->s.line));
	return o;
}

/* ---- write, judge, apply ---- */

/* The plugin's judgement of monitor NAME's section in CFG, into DIAG
 * (what -t adds to the core's checks). */
static void
judge_section(const struct config *cfg, const char *name,
    struct wp_diag *diag)
{
	const struct cfg_monitor *m = config_find_monitor(cfg, name);
	const struct plugin *p;
	struct configured c;

	if (m == NULL || !m->s.configurable ||
	    (p = loader_by_desc(m->s.plugin)) == NULL)
		return;
	if (configure_section(p, cfg, &m->s, m->timeout_ms, diag, &c) == 0)
		configure_release(p, c.inst, c.conf);
}

/*
 * DIAG's errors as the 422's list: a problem at line L of PATH (the file
 * written from DEF) is about DEF's key on that line (line 1 is the header,
 * key i is on line i + 2); any other problem -- another file's, or one
 * without a key -- keeps its FILE:LINE in the message.  Warnings are left
 * out.
 */
static void
errors_from_diag(const struct wp_diag *diag, const char *path,
    const struct admin_def *def, struct admin_errors *errs)
{
	size_t i, n = (size_t)diag->errors + (size_t)diag->warnings;
	size_t plen = path != NULL ? strlen(path) : 0, len;
	const char *piece, *key;
	char *line, *msg;
	long l;

	for (i = 0; i < n; i++) {
		piece = diag->text + diag->at[i].off;
		len = (i + 1 < n ? diag->at[i + 1].off : diag->len) -
		    diag->at[i].off;
		while (len > 0 && piece[len - 1] == '\n')
			len--;
		line = xasprintf("%.*s", (int)len, piece);
		key = NULL;
		msg = line;
		if (path != NULL && strncmp(line, path, plen) == 0 &&
		    line[plen] == ':') {
			/* The file being written: the key, and the message
			 * without a place that exists only once written. */
			l = strtol(line + plen + 1, &msg, 10);
			if (strncmp(msg, ": ", 2) == 0)
				msg += 2;
			if (def != NULL && l >= 2 && (size_t)(l - 2) < def->n)
				key = def->kv[l - 2].key;
			if (strncmp(msg, "warning: ", 9) != 0)
				admin_errors_add(errs, key, "%s", msg);
		} else if (strstr(line, ": warning: ") == NULL)
			admin_errors_add(errs, NULL, "%s", line);
		free(line);
	}
	if (errs->n == 0)
		admin_errors_add(errs, NULL, "the configuration was rejected");
}

/* Put T's file back as it was (after an apply that failed). */
static void
roll_back(const struct target *t)
{
	char err[PATH_MAX + 256], *tmp;
	int rc;

	if (t->text == NULL)
		rc = admin_file_remove(t->path, t->dir, err, sizeof(err));
	else if ((rc = admin_file_stage(t->dir, t->name, t->text, &tmp, err,
	    sizeof(err))) == 0) {
		rc = admin_file_commit(tmp, t->path, t->dir, err, sizeof(err));
		free(tmp);
	}
	if (rc != 0)
		log_err("api: monitor %s: cannot put its file back: %s", t->name,
		    err);
}

/*
 * Make DEF (NULL: no file) monitor T's file and apply it (the steps in
 * the header comment), then answer J: OK_STATUS with the monitor and its
 * ETag (204 for a removal), 422 with the problems, 500 when the file
 * cannot be written.
 */
static void
commit(struct api_job *j, struct target *t, const struct admin_def *def,
    unsigned ok_status, const char *what)
{
	struct cfg_overlay ov = { t->path, NULL };
	struct admin_errors errs = { NULL, 0 };
	struct wp_diag diag;
	struct config *cfg;
	char err[PATH_MAX + 256], etag[ADMIN_ETAG_SIZE], *text = NULL;
	char *tmp = NULL;
	json_t *o;
	int rc;

	if (def != NULL) {
		text = admin_ini_render(t->name, def);
		if (admin_file_stage(t->dir, t->name, text, &tmp, err,
		    sizeof(err)) != 0) {
			log_err("api: monitor %s: %s", t->name, err);
			answer_error(j, HTTP_INTERNAL, "%s", err);
			goto done;
		}
		ov.source = tmp;
	}
	cfg = hooks.load(&ov, &diag);
	if (cfg != NULL && def != NULL)
		judge_section(cfg, t->name, &diag);
	if (cfg == NULL || diag.errors > 0) {
		config_free(cfg);
		errors_from_diag(&diag, t->path, def, &errs);
		api_answer(j, HTTP_UNPROCESSABLE, admin_errors_json(&errs), NULL,
		    NULL);
		goto undo;
	}
	rc = tmp != NULL ? admin_file_commit(tmp, t->path, t->dir, err,
	    sizeof(err)) : admin_file_remove(t->path, t->dir, err, sizeof(err));
	if (rc != 0) {
		config_free(cfg);
		log_err("api: monitor %s: %s", t->name, err);
		answer_error(j, HTTP_INTERNAL, "%s", err);
		goto undo;
	}
	free(tmp);
	tmp = NULL;
	diag_free(&diag);
	diag_init(&diag, NULL);
	if (hooks.apply(cfg, &diag) != 0) {
		roll_back(t);
		errors_from_diag(&diag, t->path, def, &errs);
		api_answer(j, HTTP_UNPROCESSABLE, admin_errors_json(&errs), NULL,
		    NULL);
		goto done;
	}
	log_info("api: monitor %s %s (%s)", t->name, what, t->path);
	if (def == NULL) {
		api_answer(j, HTTP_NO_CONTENT, NULL, NULL, NULL);
		goto done;
	}
	admin_etag(text, etag, sizeof(etag));
	if ((o = monitor_view(t->name)) == NULL)
		answer_error(j, HTTP_INTERNAL, "monitor %s was applied but is "
		    "not running", t->name);
	else {
		json_object_set_new(o, "managed", json_true());
		answer_json(j, ok_status, o, etag);
	}
	goto done;
undo:
	if (tmp != NULL)
		(void)unlink(tmp);
done:
	diag_free(&diag);
	admin_errors_free(&errs);
	free(tmp);
	free(text);
}

/* ---- the routes ---- */

/* PUT and PATCH: the body's keys, the whole definition or merged. */
static void
do_write(struct api_job *j, struct target *t, const struct api_request *req,
    int patch)
{
	struct admin_def body, def;
	struct admin_errors errs = { NULL, 0 };
	int syntax;

	if (patch && !t->exists) {
		answer_error(j, HTTP_NOT_FOUND, "no monitor %s to change (PUT "
		    "creates one)", t->name);
		return;
	}
	if (admin_json_parse(req->body, req->body_len, &body, &errs,
	    &syntax) != 0) {
		api_answer(j, syntax ? HTTP_BAD_REQUEST : HTTP_UNPROCESSABLE,
		    admin_errors_json(&errs), NULL, NULL);
		admin_errors_free(&errs);
		return;
	}
	if (patch) {
		admin_def_merge(&t->def, &body, &def);
	} else {
		struct admin_def none = { NULL, 0 };
		admin_def_merge(&none, &body, &def);
	}
	commit(j, t, &def, t->exists ? HTTP_OK : HTTP_CREATED, t->exists ?
	    (patch ? "changed" : "replaced") : "created");
	admin_def_free(&body);
	admin_def_free(&def);
}

/* pause and resume: `enabled` in the monitor's file. */
static void
do_enable(struct api_job *j, struct target *t, int enabled)
{
	struct admin_def def = { NULL, 0 }, none = { NULL, 0 };

	if (!t->exists) {
		answer_error(j, HTTP_NOT_FOUND, "no monitor %s", t->name);
		return;
	}
	admin_def_merge(&t->def, &none, &def);
	admin_def_set(&def, "enabled", enabled ? "true" : "false");
	commit(j, t, &def, HTTP_OK, enabled ? "resumed" : "paused");
	admin_def_free(&def);
}

/* The result of a check run on request. */
static void
check_done(void *arg, const struct outcome *o)
{
	struct api_job *j = arg;
	const struct wp_result *r;
	json_t *res;

	if (o == NULL) {
		answer_error(j, HTTP_UNAVAILABLE, "the check was cancelled: the "
		    "monitor changed or was removed, or the agent is stopping");
		return;
	}
	r = o->result;
	res = json_object();
	json_object_set_new(res, "name", json_string(o->monitor));
	json_object_set_new(res, "type", json_string(o->type));
	/* The check's own result, and the monitor's state after it (the
	 * policy -- down_after, up_after -- may keep the state). */
	json_object_set_new(res, "check", json_string(mstate_name(o->check)));
	json_object_set_new(res, "state", json_string(mstate_name(o->state)));
	json_object_set_new(res, "previous_state",
	    json_string(mstate_name(o->previous)));
	json_object_set_new(res, "started", json_integer(o->started_ms));
	json_object_set_new(res, "latency_ms", o->ms.latency >= 0 ?
	    json_real(o->ms.latency) : json_null());
	json_object_set_new(res, "status_code", r->status_code >= 0 ?
	    json_integer(r->status_code) : json_null());
	json_object_set_new(res, "reason", json_string(reason_name(r->reason)));
	json_object_set_new(res, "error", !mstate_is_up(o->check) ?
	    json_string(r->detail != NULL && r->detail[0] ? r->detail :
	    reason_desc(r->reason)) : json_null());
	json_object_set_new(res, "attempts", json_integer(o->attempts));
	answer_json(j, HTTP_OK, res, NULL);
}

static void
do_check(struct api_job *j, const struct target *t)
{
	int64_t worst;
	int rc;

	if (t->m == NULL) {
		answer_error(j, HTTP_NOT_FOUND, "no monitor %s", t->name);
		return;
	}
	worst = t->m->timeout_ms * (1 + t->m->retries) +
	    t->m->retry_interval_ms * t->m->retries + CHECK_SLACK_MS;
	api_defer(j, worst < CHECK_WAIT_MAX_MS ? worst : CHECK_WAIT_MAX_MS);
	rc = manager_check_now(t->name, check_done, j);
	if (rc == WP_EINVAL)
		answer_error(j, HTTP_NOT_FOUND, "no monitor %s", t->name);
	else if (rc != 0)
		answer_error(j, HTTP_UNAVAILABLE, "the agent is stopping");
}

static void
do_get(struct api_job *j, const struct target *t)
{
	json_t *o = t->m != NULL ? monitor_view(t->name) : NULL;

	if (o == NULL) {
		answer_error(j, HTTP_NOT_FOUND, "no monitor %s", t->name);
		return;
	}
	json_object_set_new(o, "managed", json_boolean(managed(t) &&
	    t->exists));
	answer_json(j, HTTP_OK, o, managed(t) && t->exists ? t->etag : NULL);
}

enum action { ACT_NONE, ACT_PAUSE, ACT_RESUME, ACT_CHECK };

/* Is METHOD one of the changes (not GET or HEAD)? */
static int
is_change(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

void
admin_handle(void *arg, const struct api_request *req)
{
	static const char *const actions[] = { "", "pause", "resume", "check",
	    NULL };
	struct api_job *j = req->job;
	struct target t;
	const char *p = req->path + strlen(PREFIX), *slash, *m = req->method;
	char why[PATH_MAX + 512];
	size_t nlen;
	int act;

	(void)arg;
	memset(&t, 0, sizeof(t));
	slash = strchr(p, '/');
	nlen = slash != NULL ? (size_t)(slash - p) : strlen(p);
	/* The section name rule: the name becomes a file name, a label and
	 * a log prefix. */
	if (nlen == 0 || nlen > CFG_NAME_MAX) {
		answer_error(j, HTTP_BAD_REQUEST, "a monitor name is 1-%d "
		    "characters of letters, digits, '.', '_' or '-'",
		    CFG_NAME_MAX);
		goto done;
	}
	memcpy(t.name, p, nlen);
	t.name[nlen] = '\0';
	if (!cfg_valid_name(t.name, "._-")) {
		answer_error(j, HTTP_BAD_REQUEST, "a monitor name is 1-%d "
		    "characters of letters, digits, '.', '_' or '-'",
		    CFG_NAME_MAX);
		goto done;
	}
	for (act = 0; actions[act] != NULL; act++)
		if (slash != NULL ? strcmp(slash + 1, actions[act]) == 0 :
		    act == ACT_NONE)
			break;
	if (actions[act] == NULL || (slash != NULL && act == ACT_NONE)) {
		answer_error(j, HTTP_NOT_FOUND, "not found");
		goto done;
	}
	if (act == ACT_NONE && strcmp(m, "GET") != 0 && strcmp(m, "HEAD") &&
	    strcmp(m, "PUT") != 0 && strcmp(m, "PATCH") != 0 &&
	    strcmp(m, "DELETE") != 0) {
		api_answer(j, HTTP_METHOD_NOT_ALLOWED, xstrdup("{\"error\":"
		    "\"method not allowed\"}"), "Allow",
		    "GET, HEAD, PUT, PATCH, DELETE");
		goto done;
	}
	if (act != ACT_NONE && strcmp(m, "POST") != 0) {
		api_answer(j, HTTP_METHOD_NOT_ALLOWED, xstrdup("{\"error\":"
		    "\"method not allowed\"}"), "Allow", "POST");
		goto done;
	}

	t.cfg = manager_config();
	if (t.cfg == NULL) {
		answer_error(j, HTTP_UNAVAILABLE, "the agent is starting");
		goto done;
	}
	t.m = config_find_monitor(t.cfg, t.name);
	t.dir = t.cfg->agent.include;
	if (t.dir != NULL)
		t.path = xasprintf("%s/%s.ini", t.dir, t.name);
	if (t.path != NULL && managed(&t) && read_file(&t, why,
	    sizeof(why)) != 0) {
		answer_error(j, HTTP_CONFLICT, "%s", why);
		goto done;
	}
	if (!is_change(m) || act == ACT_CHECK) {
		if (act == ACT_CHECK)
			do_check(j, &t);
		else
			do_get(j, &t);
		goto done;
	}

	/* A change. */
	if (!managed(&t)) {
		answer_not_managed(j, &t);
		goto done;
	}
	if (t.dir == NULL) {
		answer_error(j, HTTP_CONFLICT, "the API keeps its monitors in "
		    "the folder [agent] include names, and %s sets none: add "
		    "include = conf.d (a folder beside it) and reload",
		    t.cfg->file);
		goto done;
	}
	if (t.name[0] == '.') {
		answer_error(j, HTTP_BAD_REQUEST, "a monitor the API writes "
		    "cannot start with '.': its file %s would be hidden",
		    t.path);
		goto done;
	}
	if (req->if_match != NULL && !admin_if_match(req->if_match, t.etag,
	    t.exists)) {
		answer_error(j, HTTP_PRECONDITION_FAILED, "If-Match: %s does not "
		    "match monitor %s%s%s (it changed since it was read)",
		    req->if_match, t.name, t.exists ? ", whose ETag is " : "",
		    t.exists ? t.etag : " (it does not exist)");
		goto done;
	}
	if (strcmp(m, "PUT") == 0)
		do_write(j, &t, req, 0);
	else if (strcmp(m, "PATCH") == 0)
		do_write(j, &t, req, 1);
	else if (strcmp(m, "DELETE") == 0 && !t.exists)
		answer_error(j, HTTP_NOT_FOUND, "no monitor %s", t.name);
	else if (strcmp(m, "DELETE") == 0)
		commit(j, &t, NULL, HTTP_NO_CONTENT, "removed");
	else
		do_enable(j, &t, act == ACT_RESUME);
done:
	target_free(&t);
}
