/*
 * alert-email.so -- the "email" alert type.
 *
 * One delivery is one mail, sent with libcurl's SMTP on the host loop
 * (curl-loop.c, as http.so and alert-webhook.so do): smtp:// with STARTTLS
 * (required by default), or smtps://, AUTH when a username is set, one
 * MAIL FROM and an RCPT TO per `to`.  The message (alert-email-msg.c) is
 * built here, headers and all; libcurl only does the dot-stuffing.  A
 * group_window batch (req->alerts) is one mail listing every monitor.
 *
 * The mail is delivered when the server accepted it after DATA; anything
 * else (a refused RCPT, failed AUTH, no STARTTLS when required, a
 * transport failure) is not, and the core retries with back-off.  Every
 * recipient must be accepted before anything is sent, so a retry never
 * mails a recipient twice.  No message of this plugin quotes the URL, the
 * username or the password.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <watchpost/plugin.h>

#include "alert-email-msg.h"
#include "curl-loop.h"
#include "template.h"

enum tls_mode { TLS_REQUIRED = 0, TLS_OPPORTUNISTIC, TLS_OFF };

/* The keys, as the host parsed them (mail_keys). */
struct mail_conf {
	const char *smtp_url;
	int tls;                 /* enum tls_mode */
	const char *from;
	struct wp_list to;
	const char *username;
	const char *password;
	int verify_tls;
	const char *ca_file;
	const char *subject_template;
	struct wp_list body_template; /* one line of the body per line */
};

struct mail_inst {
	struct curlloop_plugin *st;
	const struct mail_conf *c;  /* borrowed (see plugin.h) */
	char *section;
	char from_addr[EMAIL_ADDR_MAX];
	const char *domain;         /* in from_addr */
	struct curl_slist *rcpt;    /* "<addr>" per `to` */
	char *to_header;            /* "To: ..." with CRLF */
	char mail_from[EMAIL_ADDR_MAX + 2];
	struct template *subject;   /* NULL: email_default_subject() */
	struct template *body;      /* NULL: email_default_body() */
};

struct mail_op {
	struct curlloop_xfer x;
	struct mail_inst *inst;
	struct wp_op *op;
	int64_t started_us;
	char *msg;                  /* the whole message, CRLF lines */
	size_t len, off;            /* its length, bytes read by curl */
	char *detail;               /* the request's buffer */
	size_t detail_size;
};

static void
op_free(struct mail_op *o)
{
	if (o == NULL)
		return;
	curlloop_release(o->inst->st->cl, &o->x);
	free(o->msg);
	free(o);
}

/* ------------------------------------------------------------------------ */
/* The message */

/* A test alert's mark on a configured template's subject and body (the
 * defaults say it themselves). */
static const char test_subject[] = "[watchpost] TEST: ";
static const char test_body[] = "This is a TEST alert (watchpost "
    "--test-alert): no monitor changed state.\n\n";

/*
 * The subject or body for the N alerts A: T rendered in MODE, or, when T
 * is NULL, DEF's text.  A test alert through a template is marked as one.
 * Returns a malloc()ed string, or NULL when out of memory.
 */
static char *
render(const struct template *t, const struct wp_alert *const *a, size_t n,
    enum template_mode mode, char *(*def)(const struct wp_alert *const *,
    size_t))
{
	struct template_buf b = TEMPLATE_BUF_INIT;
	const char *mark = mode == TEMPLATE_HEADER ? test_subject : test_body;
	size_t i;
	int test = 0;

	if (t == NULL)
		return def(a, n);
	for (i = 0; i < n; i++)
		if (a[i]->size >= offsetof(struct wp_alert, flags) +
		    sizeof(a[i]->flags) && (a[i]->flags & WP_ALERT_TEST))
			test = 1;
	if ((test && template_buf_put(&b, mark, strlen(mark), mode) != 0) ||
	    template_render(t, a, n, mode, &b) != 0) {
		template_buf_free(&b);
		return NULL;
	}
	return b.p; /* realloc()ed, NUL-terminated: the caller frees it */
}

/*
 * The whole message for the N alerts A: headers, a blank line, the body.
 * Returns a malloc()ed string (length in *LEN), or NULL when out of
 * memory.
 */
static char *
build_message(struct mail_inst *in, const struct wp_alert *const *a, size_t n,
    int64_t now_us, size_t *len)
{
	char date[40], *subject = NULL, *body = NULL, *enc = NULL;
	char *subj_h = NULL, *mid = NULL, *out = NULL;
	const char *cte = NULL;
	const char *agent = a[0]->size >= offsetof(struct wp_alert, agent) +
	    sizeof(a[0]->agent) ? a[0]->agent : NULL;
	FILE *f = NULL;

	*len = 0;
	email_date(now_us, date, sizeof(date));
	if ((subject = render(in->subject, a, n, TEMPLATE_HEADER,
	    email_default_subject)) == NULL ||
	    (body = render(in->body, a, n, TEMPLATE_TEXT,
	    email_default_body)) == NULL ||
	    (enc = email_body(body, &cte)) == NULL ||
	    (subj_h = email_header("Subject", subject)) == NULL ||
	    (mid = email_message_id(a[0]->id, n, a[0]->timestamp_us,
	    in->section, agent, in->domain)) == NULL ||
	    (f = open_memstream(&out, len)) == NULL)
		goto done;
	/* From and To were judged at configure(): printable ASCII, no line
	 * breaks; everything from an alert went through email_header(). */
	fprintf(f, "Date: %s\r\n", date);
	fprintf(f, "From: %s\r\n", in->c->from);
	fputs(in->to_header, f);
	fputs(subj_h, f);
	fprintf(f, "Message-ID: %s\r\n", mid);
	fprintf(f, "X-Watchpost-Alert-Id: %" PRIu64 "\r\n", a[0]->id);
	/* RFC 3834: no vacation auto-replies to an automatic mail. */
	fputs("Auto-Submitted: auto-generated\r\n", f);
	fputs("MIME-Version: 1.0\r\n", f);
	fputs("Content-Type: text/plain; charset=utf-8\r\n", f);
	fprintf(f, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
	fputs(enc, f);
	if (ferror(f)) {
		fclose(f);
		free(out);
		out = NULL;
	} else if (fclose(f) != 0) {
		free(out);
		out = NULL;
	}
done:
	free(subject);
	free(body);
	free(enc);
	free(subj_h);
	free(mid);
	return out;
}

/* CURLOPT_READFUNCTION: the message, in pieces. */
static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct mail_op *o = arg;
	size_t n = size * nitems;

	if (n > o->len - o->off)
		n = o->len - o->off;
	memcpy(buf, o->msg + o->off, n);
	o->off += n;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Delivery */

/*
 * The SMTP server's refusals, which curlloop_failure() (HTTP's words)
 * does not know: reason status with the server's code.  Returns 0 when
 * RC is not one of them.
 */
static int
smtp_failure(struct mail_op *o, CURLcode rc, long code, struct wp_result *res)
{
	const char *what;

	switch (rc) {
	case CURLE_LOGIN_DENIED:
		what = "SMTP authentication failed";
		break;
	case CURLE_USE_SSL_FAILED:
		/* Before MAIL FROM: nothing went out in clear. */
		res->reason = WP_REASON_TLS;
		snprintf(o->detail, o->detail_size, "the SMTP server does not "
		    "offer STARTTLS (tls = required): not sent");
		res->detail = o->detail;
		return 1;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_REMOTE_ACCESS_DENIED:
		/* With a reply code the server said no (libcurl's text
		 * names the command: "RCPT failed: 550"); without one the
		 * transport failed. */
		if (code < 400)
			return 0;
		what = "SMTP server refused the mail";
		break;
	default:
		return 0;
	}
	res->reason = WP_REASON_STATUS;
	res->status_code = (int)code;
	/* libcurl's SMTP texts quote the command and code, never an
	 * address, the user or the password. */
	if (o->x.errbuf[0] != '\0') {
		size_t i;

		for (i = 0; o->x.errbuf[i] != '\0'; i++)
			if ((unsigned char)o->x.errbuf[i] < 0x20)
				o->x.errbuf[i] = ' ';
		snprintf(o->detail, o->detail_size, "%s (%s)", what,
		    o->x.errbuf);
	} else
		snprintf(o->detail, o->detail_size, "%s (%ld)", what, code);
	res->detail = o->detail;
	return 1;
}

/* How far a timed-out transfer got, in SMTP's terms (curlloop_phase()
 * speaks HTTP): a server that answered anything is in the dialogue. */
static void
timed_out(struct mail_op *o, struct wp_result *res)
{
	snprintf(o->detail, o->detail_size, "timed out %s", o->x.got_header ?
	    "in the SMTP dialogue" : "before the SMTP server answered");
	res->reason = WP_REASON_TIMEOUT;
	res->detail = o->detail;
}

static void
mail_done(struct curlloop_xfer *x, CURLcode rc)
{
	struct mail_op *o = x->arg;
	struct wp_result res = WP_RESULT_INIT;
	long code = 0;

	curlloop_timings(x, &res);
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK) {
		res.reason = WP_REASON_OK;
		res.status_code = (int)code;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		timed_out(o, &res);
	} else if (!smtp_failure(o, rc, code, &res)) {
		curlloop_failure(x, rc, &res, o->detail, o->detail_size);
		res.status_code = code > 0 ? (int)code : -1;
	}
	o->inst->st->host->complete(o->op, &res);
	op_free(o);
}

static int
mail_start(void *inst, const struct wp_request *req, void **opstate)
{
	static const long use_ssl[] = { CURLUSESSL_ALL, CURLUSESSL_TRY,
	    CURLUSESSL_NONE };
	struct mail_inst *in = inst;
	struct curlloop_plugin *st = in->st;
	const struct wp_alert *one[1];
	const struct wp_alert *const *a = one;
	size_t n = 1;
	struct mail_op *o;
	CURL *e;
	int bad = 0, rc;

	if (req->alert == NULL)
		return WP_EINVAL;
	one[0] = req->alert;
	/* A 2.1 host hands a group_window batch in req->alerts. */
	if (req->size >= offsetof(struct wp_request, n_alerts) +
	    sizeof(req->n_alerts) && req->alerts != NULL && req->n_alerts > 0) {
		a = req->alerts;
		n = req->n_alerts;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return WP_ENOMEM;
	o->inst = in;
	o->op = req->op;
	o->started_us = st->host->now_us();
	o->detail = req->detail;
	o->detail_size = req->detail_size;
	o->x.arg = o;
	o->x.done = mail_done;
	o->x.body = NULL;
	if ((o->msg = build_message(in, a, n, st->host->wall_us(),
	    &o->len)) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	rc = curlloop_setup(st->cl, &o->x, in->c->smtp_url, NULL,
	    in->c->verify_tls, 0, req->deadline_us - o->started_us);
	if (rc != 0)
		goto fail;
	e = o->x.easy;
	/* curlloop_setup() allows http and https: this transfer is SMTP. */
#if LIBCURL_VERSION_NUM >= 0x075500
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") !=
	    CURLE_OK;
#else
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS)) != CURLE_OK;
#endif
	bad |= curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl[in->c->tls]) !=
	    CURLE_OK;
	if (in->c->ca_file != NULL) {
		/* Only these CAs: not the system's as well. */
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, in->c->ca_file) !=
		    CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK;
	}
	if (in->c->username != NULL) {
		bad |= curl_easy_setopt(e, CURLOPT_USERNAME,
		    in->c->username) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_PASSWORD,
		    in->c->password) != CURLE_OK;
	}
	bad |= curl_easy_setopt(e, CURLOPT_MAIL_FROM, in->mail_from) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_MAIL_RCPT, in->rcpt) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
	    (curl_off_t)o->len) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_READDATA, o) != CURLE_OK;
	if (bad) {
		rc = WP_EINVAL;
		goto fail;
	}
	if ((rc = curlloop_loop_add(st->cl, &o->x)) != 0)
		goto fail;
	*opstate = o;
	return 0;
fail:
	op_free(o);
	return rc;
}

static void
mail_cancel(void *inst, void *opstate)
{
	struct mail_inst *in = inst;
	struct mail_op *o = opstate;
	struct wp_result res = WP_RESULT_INIT;

	curlloop_timings(&o->x, &res);
	curlloop_loop_remove(in->st->cl, &o->x);
	timed_out(o, &res);
	res.latency_us = in->st->host->now_us() - o->started_us;
	in->st->host->complete(o->op, &res);
	op_free(o);
}

/* ------------------------------------------------------------------------ */
/* Configuration */

static void
mail_release(void *state, void *inst)
{
	struct mail_inst *in = inst;

	(void)state;
	if (in == NULL)
		return;
	curl_slist_free_all(in->rcpt);
	template_free(in->subject);
	template_free(in->body);
	free(in->to_header);
	free(in->section);
	free(in);
}

/* The To header for the configured recipients, each on its own folded
 * line: "To: a@example.org,\r\n b@example.org\r\n". */
static char *
to_header(const struct wp_list *to)
{
	char *out = NULL;
	size_t len = 0, i;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	fputs("To:", f);
	for (i = 0; i < to->n; i++)
		fprintf(f, " %s%s\r\n", to->v[i], i + 1 < to->n ? "," : "");
	if (ferror(f) | fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* Where a template problem goes: the key's line in the file, then where
 * in the template. */
struct diag_ctx {
	const struct wp_host *h;
	const struct wp_section *sec;
	const char *key;
};

static void
template_diag(void *arg, int line, int col, const char *msg)
{
	struct diag_ctx *d = arg;

	if (strcmp(d->key, "subject_template") == 0)
		d->h->config_error(d->sec, d->key, "column %d: %s", col, msg);
	else
		d->h->config_error(d->sec, d->key, "template line %d, column "
		    "%d: %s", line, col, msg);
}

/* Compile TEXT, the value of KEY, into *T.  Returns 1 when it has errors
 * (reported), else 0. */
static int
compile(struct mail_inst *in, const struct wp_section *sec, const char *key,
    const char *text, struct template **t)
{
	struct diag_ctx d = { in->st->host, sec, key };

	*t = template_compile(text, template_diag, &d);
	return *t == NULL;
}

/* The lines of L joined with LF: the body template's text. */
static char *
join_lines(const struct wp_list *l)
{
	char *out = NULL;
	size_t len = 0, i;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	for (i = 0; i < l->n; i++)
		fprintf(f, "%s\n", l->v[i]);
	if (ferror(f) | fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* 1 if URL has a user (or password) part, which curl would use for AUTH
 * and which would put a secret where the host does not guard one. */
static int
url_has_user(const char *url)
{
	CURLU *u = curl_url();
	char *user = NULL, *pass = NULL;
	int has;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		return 0; /* the host judged the URL already */
	}
	has = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK;
	curl_free(user);
	curl_free(pass);
	curl_url_cleanup(u);
	return has;
}

/*
 * The host checked the types (smtp_url's scheme among them); judge the
 * addresses and what depends on several keys.  Every problem is reported;
 * the password's value never is.
 */
static int
mail_configure(void *state, const struct wp_section *sec, const void *conf,
    void **instp)
{
	struct curlloop_plugin *st = state;
	const struct wp_host *h = st->host;
	const struct mail_conf *c = conf;
	char addr[EMAIL_ADDR_MAX], rcpt[EMAIL_ADDR_MAX + 2];
	int smtps = strncmp(c->smtp_url, "smtps:", 6) == 0;
	struct mail_inst *in;
	struct curl_slist *l;
	const char *why;
	int bad = 0, rc = 0;
	size_t i;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return WP_ENOMEM;
	in->st = st;
	in->c = c;
	if ((in->section = strdup(sec->name)) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	if ((why = email_parse_addr(c->from, in->from_addr)) != NULL) {
		h->config_error(sec, "from", "\"%s\": %s", c->from, why);
		bad = 1;
	} else {
		in->domain = strchr(in->from_addr, '@') + 1;
		snprintf(in->mail_from, sizeof(in->mail_from), "<%s>",
		    in->from_addr);
	}
	for (i = 0; i < c->to.n; i++) {
		if ((why = email_parse_addr(c->to.v[i], addr)) != NULL) {
			h->config_error(sec, "to", "\"%s\": %s", c->to.v[i],
			    why);
			bad = 1;
			continue;
		}
		snprintf(rcpt, sizeof(rcpt), "<%s>", addr);
		if ((l = curl_slist_append(in->rcpt, rcpt)) == NULL) {
			rc = WP_ENOMEM;
			goto fail;
		}
		in->rcpt = l;
	}
	if (url_has_user(c->smtp_url)) {
		h->config_error(sec, "smtp_url", "no credentials in the URL: "
		    "use username and password_file");
		bad = 1;
	}
	if (smtps && c->tls != TLS_REQUIRED) {
		h->config_error(sec, "tls", "smtps:// is always TLS; tls = "
		    "opportunistic or off is for smtp:// (STARTTLS)");
		bad = 1;
	}
	if ((c->username != NULL) != (c->password != NULL)) {
		h->config_error(sec, c->username ? "username" : "password",
		    "username and password (or password_file) go together");
		bad = 1;
	}
	if (c->password != NULL && c->tls != TLS_REQUIRED) {
		h->config_error(sec, "tls", "a password needs tls = required "
		    "(or smtps://): without it the password could cross the "
		    "network in clear");
		bad = 1;
	}
	if (c->ca_file != NULL && !c->verify_tls) {
		h->config_error(sec, "ca_file", "ca_file is for verifying the "
		    "server, but verify_tls is off");
		bad = 1;
	}
	if (c->subject_template != NULL)
		bad |= compile(in, sec, "subject_template", c->subject_template,
		    &in->subject);
	if (c->body_template.n > 0) {
		char *text = join_lines(&c->body_template);

		if (text == NULL) {
			rc = WP_ENOMEM;
			goto fail;
		}
		bad |= compile(in, sec, "body_template", text, &in->body);
		free(text);
	}
	if (bad) {
		rc = WP_EINVAL;
		goto fail;
	}
	if ((in->to_header = to_header(&c->to)) == NULL) {
		rc = WP_ENOMEM;
		goto fail;
	}
	*instp = in;
	return 0;
fail:
	mail_release(st, in);
	return rc;
}

static const char *const schemes[] = { "smtp", "smtps", NULL };
static const char *const tls_modes[] = { "required", "opportunistic", "off",
	NULL };

/* timeout is a common alert key: the host handles it. */
static const struct wp_key mail_keys[] = {
	{ WP_KEY(WP_KT_URL, "smtp_url", struct mail_conf, smtp_url),
	    .flags = WP_KEY_REQUIRED, .values = schemes,
	    .help = "smtp://HOST[:PORT] (STARTTLS) or smtps://HOST[:PORT]" },
	{ WP_KEY(WP_KT_ENUM, "tls", struct mail_conf, tls),
	    .def = "required", .values = tls_modes,
	    .help = "STARTTLS on smtp://: required, opportunistic or off" },
	{ WP_KEY(WP_KT_STRING, "from", struct mail_conf, from),
	    .flags = WP_KEY_REQUIRED,
	    .help = "sender: user@example.org or Name <user@example.org>" },
	{ WP_KEY(WP_KT_STRING, "to", struct mail_conf, to),
	    .flags = WP_KEY_REQUIRED | WP_KEY_MULTI,
	    .help = "recipient address (repeatable)" },
	{ WP_KEY(WP_KT_STRING, "username", struct mail_conf, username),
	    .help = "SMTP AUTH user name" },
	{ WP_KEY(WP_KT_SECRET, "password", struct mail_conf, password),
	    .help = "SMTP AUTH password (password_file = PATH reads it)" },
	{ WP_KEY(WP_KT_BOOL, "verify_tls", struct mail_conf, verify_tls),
	    .def = "true",
	    .help = "verify the server's certificate and name" },
	{ WP_KEY(WP_KT_PATH, "ca_file", struct mail_conf, ca_file),
	    .help = "PEM file of the CA certificates to trust instead of the "
	    "system's" },
	{ WP_KEY(WP_KT_STRING, "subject_template", struct mail_conf,
	    subject_template),
	    .help = "the Subject, a template: [watchpost] {{state}}: "
	    "{{monitor}}" },
	{ WP_KEY(WP_KT_STRING, "body_template", struct mail_conf,
	    body_template), .flags = WP_KEY_MULTI,
	    .help = "one line of the body, a template (repeatable: one key "
	    "per line)" },
};

WP_ALERT_PLUGIN(email,
    .version = PACKAGE_VERSION,
    .description = "send each alert as a mail over SMTP",
    WP_KEYS(mail_keys, struct mail_conf),
    .init = curlloop_plugin_init,
    .fini = curlloop_plugin_fini,
    .configure = mail_configure,
    .release = mail_release,
    .start = mail_start,
    .cancel = mail_cancel,
    .flags = WP_PLUGIN_F_GROUPS)
