/*
 * alert-grouprec.so -- a test-only alert plugin that renders groups
 * (WP_PLUGIN_F_GROUPS) and records what it receives, so that tests of
 * group_window do not depend on a real channel.
 *
 * Keys: record (file; each accepted operation appends one line
 * "op n=N attempt=A" and then one line per alert of req->alerts,
 * "alert id=... monitor=... state=... previous=... since_us=...
 * target=... agent=... flags=... repeat=..."), status_path (optional: while
 * it exists and its first line is not "ok", every operation fails with
 * WP_REASON_STATUS and the detail "refused: LINE", recording nothing).
 * Blocking form: check() runs on a worker thread; a whole operation is
 * written with one write(2) to a file opened O_APPEND.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <watchpost/plugin.h>

struct conf {
	const char *record;
	const char *status_path;
};

static int
init(const struct wp_host *h, void **state)
{
	(void)h;
	*state = NULL;
	return WP_OK;
}

/* The instance is the conf: it lives until release(). */
static int
configure(void *state, const struct wp_section *sec, const void *conf,
    void **out)
{
	(void)state;
	(void)sec;
	*out = (void *)conf;
	return WP_OK;
}

static void
release(void *state, void *p)
{
	(void)state;
	(void)p;
}

/* The status file's first line into BUF ("ok" when there is none). */
static void
status_of(const struct conf *c, char *buf, size_t len)
{
	FILE *f = c->status_path ? fopen(c->status_path, "r") : NULL;

	snprintf(buf, len, "ok");
	if (f == NULL)
		return;
	if (fgets(buf, (int)len, f) == NULL)
		snprintf(buf, len, "ok");
	buf[strcspn(buf, "\r\n")] = '\0';
	fclose(f);
}

static const char *
str(const char *s)
{
	return s != NULL ? s : "-";
}

static int
check(void *p, const struct wp_request *req, struct wp_result *res)
{
	const struct conf *c = p;
	size_t n = req->n_alerts, i, cap = 256 + n * 512, len = 0;
	char status[128], *buf;
	int fd;

	status_of(c, status, sizeof(status));
	if (strcmp(status, "ok") != 0) {
		snprintf(req->detail, req->detail_size, "refused: %s", status);
		res->reason = WP_REASON_STATUS;
		res->detail = req->detail;
		return WP_OK;
	}
	if ((buf = malloc(cap)) == NULL)
		return WP_ENOMEM;
	len += (size_t)snprintf(buf + len, cap - len, "op n=%zu attempt=%u\n",
	    n, req->attempt);
	for (i = 0; i < n && len < cap; i++) {
		const struct wp_alert *a = req->alerts[i];

		len += (size_t)snprintf(buf + len, cap - len, "alert id=%"
		    PRIu64 " monitor=%s state=%s previous=%s since_us=%" PRId64
		    " target=%s agent=%s flags=%u repeat=%u\n", a->id,
		    a->monitor, a->state, a->previous_state, a->since_us,
		    str(a->target), str(a->agent), a->flags, a->repeat);
	}
	if (len >= cap)
		len = cap - 1;
	fd = open(c->record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		snprintf(req->detail, req->detail_size, "cannot record");
		res->reason = WP_REASON_IO;
		res->detail = req->detail;
	} else {
		snprintf(req->detail, req->detail_size, "recorded %zu", n);
		res->reason = WP_REASON_OK;
		res->detail = req->detail;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return WP_OK;
}

static const struct wp_key keys[] = {
	{ WP_KEY(WP_KT_PATH, "record", struct conf, record),
	  .flags = WP_KEY_REQUIRED, .help = "file that records operations" },
	{ WP_KEY(WP_KT_PATH, "status_path", struct conf, status_path),
	  .help = "while its first line is not \"ok\", refuse" },
};

WP_ALERT_PLUGIN(grouprec,
    .version = "test",
    .description = "test alert plugin that records groups",
    WP_KEYS(keys, struct conf),
    .init = init,
    .configure = configure,
    .release = release,
    .check = check,
    .flags = WP_PLUGIN_F_GROUPS)
