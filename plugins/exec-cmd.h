/*
 * exec-cmd -- what exec.so (the "exec" check) and alert-exec.so (the
 * "exec" alert) share: the command, arg and env keys judged once, the
 * clean environment, and the words for how a command ended.  Both run the
 * command through host->spawn (no shell, own process group).
 */
#ifndef PLUGINS_EXEC_CMD_H
#define PLUGINS_EXEC_CMD_H

#include <stddef.h>

#include <watchpost/plugin.h>

/* The PATH every command gets unless an env entry sets its own. */
#define EXECCMD_PATH "PATH=/usr/bin:/bin"
/* The command's own deadline is the operation's plus this: the host's
 * cancel() at the deadline kills it first, so the host's timeout is what
 * is recorded; this only bounds a command if cancel() never came. */
#define EXECCMD_BACKSTOP_US 1000000
/* Bytes of stdout (and of stderr) kept; the rest is read and dropped. */
#define EXECCMD_OUTPUT_MAX 65536

struct execcmd {
	char **argv;        /* command, then each arg; NULL-terminated */
	char **user_env;    /* the env entries, NULL-terminated */
};

/*
 * Judge COMMAND (an absolute path to an executable file), ARGS and ENV
 * (each NAME=value, NAME a shell variable name, no NAME twice) of section
 * SEC, reporting each problem through H->config_error; then copy them
 * into *C.  Returns WP_OK, WP_EINVAL (problems reported) or WP_ENOMEM;
 * on failure *C holds nothing to free.
 */
int execcmd_configure(const struct wp_host *h, const struct wp_section *sec,
    const char *command, const struct wp_list *args,
    const struct wp_list *env, struct execcmd *c);
void execcmd_free(struct execcmd *c);

/*
 * The environment of one run: EXECCMD_PATH, then VARS (NAME=value,
 * NULL-terminated; NULL for none), then C's env entries, an entry
 * replacing an earlier one of the same name.  A malloc'd array of
 * borrowed pointers (free() only the array), or NULL out of memory.
 */
char **execcmd_env(const struct execcmd *c, const char *const *vars);

/* The first line of LEN bytes at S, blanks trimmed, control bytes as
 * spaces, into BUF (SIZE bytes, NUL-terminated, cut to fit). */
void execcmd_first_line(const char *s, size_t len, char *buf, size_t size);

/* How a command that ran ended, for a message: "exit 4", "killed by
 * signal 11 (Segmentation fault)".  R->status is WP_OK. */
void execcmd_ending(const struct wp_spawn_result *r, char *buf, size_t size);

#endif
