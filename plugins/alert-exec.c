/*
 * alert-exec.so -- the "exec" alert type: each delivery runs a command
 * through host->spawn (no shell, its own process group killed at the
 * deadline, at most [agent] exec_max at once) with the webhook's JSON
 * body (webhook-payload.c) on stdin.
 *
 * Exit 0 is delivered.  Anything else -- another exit code, a signal, a
 * command that could not start or was killed at the deadline -- is a
 * failed attempt, which the core retries with back-off; its error is
 * stderr's first line (stdout's when stderr is empty).
 *
 * The environment is PATH=/usr/bin:/bin, the WATCHPOST_* variables below
 * and the section's env entries (which win over both):
 *   WATCHPOST_ALERT           the alert section's name
 *   WATCHPOST_MONITOR         the monitor's name
 *   WATCHPOST_TYPE            its check type
 *   WATCHPOST_STATE           up, degraded or down
 *   WATCHPOST_PREVIOUS_STATE  pending, up, degraded or down
 *   WATCHPOST_ID              the alert's id (the same on every retry)
 *   WATCHPOST_ATTEMPT         0 for the first attempt, then 1, 2, ...
 *   WATCHPOST_TIMESTAMP       unix seconds of the check that changed state
 *   WATCHPOST_REASON          the reason's short name (empty when up)
 *   WATCHPOST_ERROR           the check's detail (empty when up)
 *
 * An operation's struct lives until the command's callback, which may
 * come after cancel() completed it; fini() frees those whose callback
 * never came (see exec.c).
 */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <watchpost/plugin.h>

#include "exec-cmd.h"
#include "webhook-payload.h"

#define N_VARS 10

struct aexec_op;

struct aexec_state {
	const struct wp_host *host;
	struct aexec_op *ops;   /* every op whose callback has not come */
};

/* The keys, as the host parsed them (aexec_keys). */
struct aexec_conf {
	const char *command;
	struct wp_list arg;
	struct wp_list env;
};

struct aexec_inst {
	struct aexec_state *st;
	struct execcmd cmd;
	char *name;             /* the [alert:NAME] section's name */
};

struct aexec_op {
	struct aexec_state *st;
	struct wp_op *op;       /* NULL once completed */
	const struct wp_request *req;
	struct wp_proc *proc;
	struct aexec_op *prev, *next;
};

static const struct wp_key aexec_keys[] = {
	{ WP_KEY(WP_KT_STRING, "command", struct aexec_conf, command),
	    .flags = WP_KEY_REQUIRED,
	    .help = "absolute path of the command to run (no shell); the "
	    "JSON body on its stdin" },
	{ WP_KEY(WP_KT_STRING, "arg", struct aexec_conf, arg),
	    .flags = WP_KEY_MULTI,
	    .help = "one argument, passed as is (repeatable, in order)" },
	{ WP_KEY(WP_KT_SECRET, "env", struct aexec_conf, env),
	    .flags = WP_KEY_MULTI,
	    .help = "NAME=value added to the clean environment (repeatable)" },
};

static int
aexec_init(const struct wp_host *host, void **state)
{
	struct aexec_state *st;

	if (host->size < offsetof(struct wp_host, spawn_kill) +
	    sizeof(host->spawn_kill) || host->spawn == NULL)
		return WP_ENOTSUP; /* a 2.0 host cannot run commands */
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return WP_ENOMEM;
	st->host = host;
	*state = st;
	return WP_OK;
}

static void
aexec_fini(void *state)
{
	struct aexec_state *st = state;
	struct aexec_op *o, *next;

	for (o = st->ops; o != NULL; o = next) {
		next = o->next;
		free(o);
	}
	free(st);
}

static void
aexec_release(void *state, void *inst)
{
	struct aexec_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	execcmd_free(&in->cmd);
	free(in->name);
	free(in);
}

static int
aexec_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct aexec_state *st = state;
	const struct aexec_conf *c = conf;
	struct aexec_inst *in;
	int rc;

	*instp = NULL;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	rc = execcmd_configure(st->host, sec, c->command, &c->arg, &c->env,
	    &in->cmd);
	if (rc != WP_OK) {
		free(in);
		return rc;
	}
	if ((in->name = strdup(sec->name)) == NULL) {
		aexec_release(st, in);
		return WP_ENOMEM;
	}
	*instp = in;
	return WP_OK;
}

static void
op_unlink(struct aexec_op *o)
{
	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		o->st->ops = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
}

/* The command ended: delivered on exit 0, else a failed attempt. */
static void
aexec_done(void *arg, const struct wp_spawn_result *r)
{
	struct aexec_op *o = arg;
	struct wp_result res = WP_RESULT_INIT;
	char line[WP_DETAIL_MAX], how[96];

	if (o->op == NULL)
		goto out;
	res.latency_us = r->runtime_us;
	if (r->status == WP_OK && r->exit_code == 0) {
		res.reason = WP_REASON_OK;
	} else if (r->status == WP_OK) {
		res.reason = WP_REASON_CHECK;
		execcmd_first_line(r->err, r->err_len, line, sizeof(line));
		if (line[0] == '\0')
			execcmd_first_line(r->out, r->out_len, line,
			    sizeof(line));
		execcmd_ending(r, how, sizeof(how));
		snprintf(o->req->detail, o->req->detail_size, "%s: %s", how,
		    line[0] ? line : "no output");
		res.detail = o->req->detail;
	} else {
		res.reason = r->status == WP_ECANCELED ? WP_REASON_TIMEOUT :
		    WP_REASON_PLUGIN;
		execcmd_first_line(r->out, r->out_len, o->req->detail,
		    o->req->detail_size);
		if (o->req->detail[0] == '\0' || r->status == WP_ECANCELED)
			snprintf(o->req->detail, o->req->detail_size,
			    "killed at the deadline");
		res.detail = o->req->detail;
	}
	o->st->host->complete(o->op, &res);
out:
	op_unlink(o);
	free(o);
}

/* "NAME=value" in a malloc'd string, or NULL. */
static char *
var(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s=%s", name, value);
	return s;
}

static int
aexec_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct aexec_inst *in = inst;
	struct aexec_state *st = in->st;
	struct wp_alert a;
	struct aexec_op *o = NULL;
	char *vars[N_VARS + 1] = { NULL };
	char num[3][32];
	char **env = NULL;
	char *body = NULL;
	int rc = WP_ENOMEM, i;

	*opstate = NULL;
	if (req->alert == NULL)
		return WP_EINVAL;
	/* Size-prefixed: an older host's shorter struct reads as zero. */
	memset(&a, 0, sizeof(a));
	memcpy(&a, req->alert, req->alert->size < sizeof(a) ?
	    req->alert->size : sizeof(a));
	snprintf(num[0], sizeof(num[0]), "%" PRIu64, a.id);
	snprintf(num[1], sizeof(num[1]), "%u", a.attempt);
	snprintf(num[2], sizeof(num[2]), "%lld",
	    (long long)(a.timestamp_us / 1000000));
	vars[0] = var("WATCHPOST_ALERT", in->name);
	vars[1] = var("WATCHPOST_MONITOR", a.monitor ? a.monitor : "");
	vars[2] = var("WATCHPOST_TYPE", a.type ? a.type : "");
	vars[3] = var("WATCHPOST_STATE", a.state ? a.state : "");
	vars[4] = var("WATCHPOST_PREVIOUS_STATE",
	    a.previous_state ? a.previous_state : "");
	vars[5] = var("WATCHPOST_ID", num[0]);
	vars[6] = var("WATCHPOST_ATTEMPT", num[1]);
	vars[7] = var("WATCHPOST_TIMESTAMP", num[2]);
	vars[8] = var("WATCHPOST_REASON", a.reason ? a.reason : "");
	vars[9] = var("WATCHPOST_ERROR", a.error ? a.error : "");
	for (i = 0; i < N_VARS; i++)
		if (vars[i] == NULL)
			goto out;
	if ((env = execcmd_env(&in->cmd, (const char *const *)vars)) == NULL ||
	    (body = webhook_payload(req->alert)) == NULL ||
	    (o = calloc(1, sizeof(*o))) == NULL)
		goto out;
	o->st = st;
	o->op = req->op;
	o->req = req;
	{
		struct wp_spawn s = {
			.size = sizeof(s),
			.path = in->cmd.argv[0],
			.argv = (const char *const *)in->cmd.argv,
			.env = (const char *const *)env,
			.input = body,
			.input_len = strlen(body),
			.output_max = EXECCMD_OUTPUT_MAX,
			/* The host cancels at its deadline (and
			 * cancel() kills); this is the backstop. */
			.deadline_us = req->deadline_us + EXECCMD_BACKSTOP_US,
		};

		/* spawn() copies the command: ours is freed below. */
		o->proc = st->host->spawn(st->host, &s, aexec_done, o);
	}
	if (o->proc == NULL)
		goto out;
	o->next = st->ops;
	if (st->ops != NULL)
		st->ops->prev = o;
	st->ops = o;
	*opstate = o;
	o = NULL;
	rc = WP_OK;
out:
	free(o);
	free(body);
	free(env);
	for (i = 0; i < N_VARS; i++)
		free(vars[i]);
	return rc;
}

/* The deadline (or shutdown): kill the group and complete now. */
static void
aexec_cancel(void *inst, void *opstate)
{
	struct aexec_op *o = opstate;
	struct wp_result res = WP_RESULT_INIT;
	struct wp_op *op = o->op;

	(void)inst;
	o->op = NULL;
	o->st->host->spawn_kill(o->proc);
	res.reason = WP_REASON_TIMEOUT;
	snprintf(o->req->detail, o->req->detail_size, "killed at the "
	    "deadline with its process group");
	res.detail = o->req->detail;
	o->st->host->complete(op, &res);
}

WP_ALERT_PLUGIN(exec,
    .version = PACKAGE_VERSION,
    .description = "run a command with each alert's JSON on stdin "
    "(no shell)",
    WP_KEYS(aexec_keys, struct aexec_conf),
    .init = aexec_init,
    .fini = aexec_fini,
    .configure = aexec_configure,
    .release = aexec_release,
    .start = aexec_start,
    .cancel = aexec_cancel)
