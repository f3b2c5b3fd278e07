/*
 * exec-cmd.c -- the shared keys and environment of exec.so and
 * alert-exec.so (exec-cmd.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec-cmd.h"

/* Length of the NAME in "NAME=value", or 0 when it is not a shell
 * variable name followed by '='. */
static size_t
env_name_len(const char *e)
{
	size_t i = 0;

	if (!((e[0] >= 'A' && e[0] <= 'Z') || (e[0] >= 'a' && e[0] <= 'z') ||
	    e[0] == '_'))
		return 0;
	for (i = 1; e[i] != '\0' && e[i] != '='; i++)
		if (!((e[i] >= 'A' && e[i] <= 'Z') ||
		    (e[i] >= 'a' && e[i] <= 'z') ||
		    (e[i] >= '0' && e[i] <= '9') || e[i] == '_'))
			return 0;
	return e[i] == '=' ? i : 0;
}

static int
same_name(const char *a, const char *b)
{
	size_t n = env_name_len(a);

	return n != 0 && n == env_name_len(b) && memcmp(a, b, n) == 0;
}

static void
strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void
execcmd_free(struct execcmd *c)
{
	if (c == NULL)
		return;
	strv_free(c->argv);
	strv_free(c->user_env);
	c->argv = c->user_env = NULL;
}

int
execcmd_configure(const struct wp_host *h, const struct wp_section *sec,
    const char *command, const struct wp_list *args,
    const struct wp_list *env, struct execcmd *c)
{
	struct stat sb;
	size_t i, j;
	int bad = 0;

	memset(c, 0, sizeof(*c));
	if (command[0] != '/') {
		h->config_error(sec, "command", "\"%s\" is not an absolute "
		    "path (no shell and no PATH search: give the whole path)",
		    command);
		bad = 1;
	} else if (stat(command, &sb) != 0) {
		h->config_error(sec, "command", "%s: not found", command);
		bad = 1;
	} else if (!S_ISREG(sb.st_mode) || access(command, X_OK) != 0) {
		h->config_error(sec, "command", "%s: not an executable file",
		    command);
		bad = 1;
	}
	for (i = 0; i < env->n; i++) {
		if (env_name_len(env->v[i]) == 0) {
			/* the value may be a secret: not quoted */
			h->config_error(sec, "env", "entry %zu is not "
			    "NAME=value", i + 1);
			bad = 1;
			continue;
		}
		for (j = 0; j < i; j++)
			if (same_name(env->v[i], env->v[j])) {
				h->config_error(sec, "env", "%.*s is set twice",
				    (int)env_name_len(env->v[i]), env->v[i]);
				bad = 1;
			}
	}
	if (bad)
		return WP_EINVAL;
	c->argv = calloc(args->n + 2, sizeof(*c->argv));
	c->user_env = calloc(env->n + 1, sizeof(*c->user_env));
	if (c->argv == NULL || c->user_env == NULL)
		goto nomem;
	if ((c->argv[0] = strdup(command)) == NULL)
		goto nomem;
	for (i = 0; i < args->n; i++)
		if ((c->argv[i + 1] = strdup(args->v[i])) == NULL)
			goto nomem;
	for (i = 0; i < env->n; i++)
		if ((c->user_env[i] = strdup(env->v[i])) == NULL)
			goto nomem;
	return WP_OK;
nomem:
	execcmd_free(c);
	return WP_ENOMEM;
}

char **
execcmd_env(const struct execcmd *c, const char *const *vars)
{
	size_t n = 1, k = 0, i, j;
	char **e;

	for (i = 0; vars != NULL && vars[i] != NULL; i++)
		n++;
	for (i = 0; c->user_env[i] != NULL; i++)
		n++;
	if ((e = calloc(n + 1, sizeof(*e))) == NULL)
		return NULL;
	e[k++] = (char *)EXECCMD_PATH;
	for (i = 0; vars != NULL && vars[i] != NULL; i++)
		e[k++] = (char *)vars[i];
	for (i = 0; c->user_env[i] != NULL; i++) {
		for (j = 0; j < k && !same_name(e[j], c->user_env[i]); j++)
			;
		e[j == k ? k++ : j] = c->user_env[i];
	}
	e[k] = NULL;
	return e;
}

void
execcmd_first_line(const char *s, size_t len, char *buf, size_t size)
{
	size_t i, k = 0;
	const char *nl;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (s == NULL)
		return;
	if ((nl = memchr(s, '\n', len)) != NULL)
		len = (size_t)(nl - s);
	while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\r'))
		len--;
	for (i = 0; i < len && k < size - 1; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	buf[k] = '\0';
}

void
execcmd_ending(const struct wp_spawn_result *r, char *buf, size_t size)
{
	if (r->exit_code >= 0)
		snprintf(buf, size, "exit %d", r->exit_code);
	else
		snprintf(buf, size, "killed by signal %d (%s)", r->term_signal,
		    strsignal(r->term_signal));
}
