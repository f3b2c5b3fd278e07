/*
 * exec.so -- the "exec" check: a Nagios-compatible plugin, run through
 * host->spawn (no shell, its own process group, a clean environment,
 * killed with its whole group at the deadline, at most [agent] exec_max
 * at once).
 *
 * The exit code is the verdict, as Nagios reads it: 0 up, 1 degraded
 * (WP_REASON_WARNING), 2 down (WP_REASON_CHECK), 3 (UNKNOWN) and anything
 * else down with reason check and a message that says so.  The first line
 * of the output (before '|') is the detail; performance data become
 * measurements (perfdata.c).  The environment is PATH=/usr/bin:/bin,
 * WATCHPOST_MONITOR (the monitor's name), WATCHPOST_TIMEOUT (its timeout
 * in whole seconds, at least 1) and the section's env entries.
 *
 * An operation owns one struct exec_op from start() until the command's
 * callback, which may come after the operation was completed: at the
 * deadline cancel() kills the command and completes at once, and the
 * callback then only frees.  fini() frees the ones whose callback never
 * came (the host drops their commands after fini(): see plugin.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <watchpost/plugin.h>

#include "exec-cmd.h"
#include "perfdata.h"

struct exec_op;

struct exec_state {
	const struct wp_host *host;
	struct exec_op *ops;    /* every op whose callback has not come */
};

/* The keys, as the host parsed them (exec_keys). */
struct exec_conf {
	const char *command;
	struct wp_list arg;
	struct wp_list env;
};

struct exec_inst {
	struct exec_state *st;
	struct execcmd cmd;
	char *vars[3];          /* WATCHPOST_MONITOR=, WATCHPOST_TIMEOUT= */
	char **env;             /* execcmd_env(): the whole environment */
};

struct exec_op {
	struct exec_state *st;
	struct wp_op *op;       /* NULL once completed */
	const struct wp_request *req;
	struct wp_proc *proc;
	struct nagios_out parsed; /* the measurements' names live here */
	struct exec_op *prev, *next;
};

static const struct wp_key exec_keys[] = {
	{ WP_KEY(WP_KT_STRING, "command", struct exec_conf, command),
	    .flags = WP_KEY_REQUIRED,
	    .help = "absolute path of the Nagios-compatible plugin to run "
	    "(no shell)" },
	{ WP_KEY(WP_KT_STRING, "arg", struct exec_conf, arg),
	    .flags = WP_KEY_MULTI,
	    .help = "one argument, passed as is (repeatable, in order)" },
	{ WP_KEY(WP_KT_SECRET, "env", struct exec_conf, env),
	    .flags = WP_KEY_MULTI,
	    .help = "NAME=value added to the clean environment (repeatable)" },
};

static int
exec_init(const struct wp_host *host, void **state)
{
	struct exec_state *st;

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
op_unlink(struct exec_op *o)
{
	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		o->st->ops = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
}

static void
exec_fini(void *state)
{
	struct exec_state *st = state;
	struct exec_op *o, *next;

	for (o = st->ops; o != NULL; o = next) {
		next = o->next;
		free(o);
	}
	free(st);
}

static void
exec_release(void *state, void *inst)
{
	struct exec_inst *in = inst;
	size_t i;

	(void)state;
	if (in == NULL)
		return;
	execcmd_free(&in->cmd);
	for (i = 0; i < 2; i++)
		free(in->vars[i]);
	free(in->env);
	free(in);
}

static int
exec_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct exec_state *st = state;
	const struct exec_conf *c = conf;
	struct exec_inst *in;
	int64_t secs;
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
	secs = sec->timeout_us / 1000000;
	in->vars[0] = malloc(strlen(sec->name) + sizeof("WATCHPOST_MONITOR="));
	in->vars[1] = malloc(sizeof("WATCHPOST_TIMEOUT=") + 24);
	if (in->vars[0] == NULL || in->vars[1] == NULL)
		goto nomem;
	sprintf(in->vars[0], "WATCHPOST_MONITOR=%s", sec->name);
	sprintf(in->vars[1], "WATCHPOST_TIMEOUT=%lld",
	    (long long)(secs < 1 ? 1 : secs));
	if ((in->env = execcmd_env(&in->cmd, (const char *const *)in->vars)) ==
	    NULL)
		goto nomem;
	*instp = in;
	return WP_OK;
nomem:
	exec_release(st, in);
	return WP_ENOMEM;
}

/* Complete O's operation with R's verdict (the command ran: status
 * WP_OK). */
static void
verdict(struct exec_op *o, const struct wp_spawn_result *r)
{
	const struct wp_request *req = o->req;
	struct wp_result res = WP_RESULT_INIT;
	struct nagios_out *p = &o->parsed;
	char how[96], text[WP_DETAIL_MAX];
	size_t i;

	nagios_parse(r->out, r->out_len, p);
	if (p->detail[0] != '\0')
		snprintf(text, sizeof(text), "%s", p->detail);
	else /* nothing on stdout: stderr's first line says more */
		execcmd_first_line(r->err, r->err_len, text, sizeof(text));
	res.latency_us = r->runtime_us;
	res.reason = r->exit_code == 0 ? WP_REASON_OK : r->exit_code == 1 ?
	    WP_REASON_WARNING : WP_REASON_CHECK;
	if (r->exit_code == 3 && strncmp(text, "UNKNOWN", 7) == 0)
		snprintf(req->detail, req->detail_size, "%s", text);
	else if (r->exit_code == 3)
		snprintf(req->detail, req->detail_size, "UNKNOWN: %s",
		    text[0] ? text : "no output");
	else if (r->exit_code < 0 || r->exit_code > 3) {
		execcmd_ending(r, how, sizeof(how));
		snprintf(req->detail, req->detail_size, "%s: %s", how,
		    text[0] ? text : "no output");
	} else if (text[0] == '\0' && r->exit_code != 0)
		snprintf(req->detail, req->detail_size, "exit %d, no output",
		    r->exit_code);
	else
		snprintf(req->detail, req->detail_size, "%s", text);
	if (req->detail[0] != '\0')
		res.detail = req->detail;
	for (i = 0; i < p->n && i < req->max_measurements; i++)
		req->measurements[i] = p->m[i];
	res.measurements = req->measurements;
	res.n_measurements = i;
	o->st->host->complete(o->op, &res);
}

/* The command ended (or never started): complete, unless cancel() did;
 * then free O. */
static void
exec_done(void *arg, const struct wp_spawn_result *r)
{
	struct exec_op *o = arg;
	struct wp_result res = WP_RESULT_INIT;

	if (o->op != NULL && r->status == WP_OK) {
		verdict(o, r);
	} else if (o->op != NULL) {
		res.reason = r->status == WP_ECANCELED ? WP_REASON_TIMEOUT :
		    WP_REASON_PLUGIN;
		execcmd_first_line(r->out, r->out_len, o->req->detail,
		    o->req->detail_size);
		if (r->status == WP_ECANCELED && r->out_len == 0)
			snprintf(o->req->detail, o->req->detail_size,
			    "killed at the deadline");
		res.detail = o->req->detail;
		o->st->host->complete(o->op, &res);
	}
	op_unlink(o);
	free(o);
}

static int
exec_start(void *inst, const struct wp_request *req, void **opstate)
{
	struct exec_inst *in = inst;
	struct exec_state *st = in->st;
	struct exec_op *o;
	struct wp_spawn s = {
		.size = sizeof(s),
		.path = in->cmd.argv[0],
		.argv = (const char *const *)in->cmd.argv,
		.env = (const char *const *)in->env,
		.output_max = EXECCMD_OUTPUT_MAX,
		/* The host cancels at its deadline (and cancel() kills);
		 * this is the backstop. */
		.deadline_us = req->deadline_us + EXECCMD_BACKSTOP_US,
	};

	*opstate = NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->st = st;
	o->op = req->op;
	o->req = req;
	if ((o->proc = st->host->spawn(st->host, &s, exec_done, o)) == NULL) {
		free(o);
		return WP_ENOMEM;
	}
	o->next = st->ops;
	if (st->ops != NULL)
		st->ops->prev = o;
	st->ops = o;
	*opstate = o;
	return WP_OK;
}

/* The deadline (or removal, or shutdown): kill the group and complete
 * now; exec_done() frees O when the command has been reaped. */
static void
exec_cancel(void *inst, void *opstate)
{
	struct exec_op *o = opstate;
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

WP_CHECK_PLUGIN(exec,
    .version = PACKAGE_VERSION,
    .description = "run a Nagios-compatible plugin (no shell)",
    WP_KEYS(exec_keys, struct exec_conf),
    .init = exec_init,
    .fini = exec_fini,
    .configure = exec_configure,
    .release = exec_release,
    .start = exec_start,
    .cancel = exec_cancel)
