/*
 * template -- the alert text templates of the webhook and email plugins.
 *
 * It is compiled into each alert plugin that uses it (hidden visibility:
 * no name leaves the .so).  It needs only libc.
 *
 * Syntax
 *   {{FIELD}}      the field of the alert, escaped for the render mode;
 *                  blanks inside the braces are ignored: {{ monitor }}.
 *                  FIELD is one of the contract's:
 *                    monitor type state previous_state reason error
 *                    latency_ms timestamp since duration target id agent
 *                    location confirmed_by
 *                  A field the alert does not have (NULL string, since 0,
 *                  latency < 0) renders as nothing.
 *   {{#alerts}}BODY{{/alerts}}
 *                  BODY once per alert of the batch (group_window), oldest
 *                  first; the fields inside refer to that alert, the fields
 *                  outside to the first alert.  Sections do not nest.
 *   {{#alerts}}BODY{{|}}SEP{{/alerts}}
 *                  the same, with SEP written between two alerts (a comma
 *                  in a JSON array: [{{#alerts}}"{{monitor}}"{{|}},{{/alerts}}]).
 *   {{count}}      the number of alerts in the batch (1 without a group).
 *   Text outside {{ }} is copied as it is, except in TEMPLATE_HEADER mode.
 *   Anything else between {{ and }} is an error at compile time, as is a
 *   {{ without }} or an unbalanced section.
 *
 * Field values
 *   timestamp, since  ISO 8601 UTC with milliseconds: 2026-11-22T10:15:30.123Z
 *   duration          since -> timestamp as "1h 2m 3s" ("0s"); empty when
 *                     since is unknown.  For a DOWN alert: how long it has
 *                     been down; for an UP alert: how long the outage was.
 *   latency_ms        milliseconds, one decimal at most: 12.5, 40
 *   id                the alert's decimal id (stable across retries)
 *   state, previous_state, type, reason: as in the JSON body ("down", ...)
 *
 * Render modes (how field values are written; bytes that are not valid
 * UTF-8 become U+FFFD in every mode)
 *   TEMPLATE_TEXT    as they are, except control characters other than
 *                    LF and TAB, which become spaces (CR LF -> " \n").
 *   TEMPLATE_JSON    escaped for the inside of a JSON string ("\"", "\\",
 *                    "\n", "\u0001"): write "{{error}}" in the template.
 *   TEMPLATE_HEADER  for one header line (Subject:, Title:): every control
 *                    character, CR and LF included, becomes a space, in
 *                    the template's own text too, so nothing can end the
 *                    line or start another header.
 */
#ifndef PLUGINS_TEMPLATE_H
#define PLUGINS_TEMPLATE_H

#include <stddef.h>

#include <watchpost/plugin.h>

enum template_mode {
	TEMPLATE_TEXT = 0,
	TEMPLATE_JSON,
	TEMPLATE_HEADER
};

struct template;

/* A growing output buffer.  Start from TEMPLATE_BUF_INIT (all zero); free
 * its memory with template_buf_free(); p is NUL-terminated once anything
 * was written. */
struct template_buf {
	char *p;
	size_t len;
	size_t cap;
};
#define TEMPLATE_BUF_INIT { NULL, 0, 0 }

/*
 * Called once per problem found by template_compile(): LINE and COL (from
 * 1) of the problem in TEXT, and a message without a secret or the
 * template's text in it beyond the offending {{...}} (at most 40 bytes).
 */
typedef void (*template_diag_fn)(void *arg, int line, int col,
    const char *msg);

/*
 * Compile TEXT (NUL-terminated; borrowed, not kept).  Returns the template,
 * or NULL after calling DIAG (may be NULL) for every problem; out of
 * memory is reported through DIAG as "out of memory" too.  Free with
 * template_free().
 */
struct template *template_compile(const char *text, template_diag_fn diag,
    void *arg);

/* Free T; accepts NULL. */
void template_free(struct template *t);

/*
 * Append T rendered for the batch ALERTS[0..N) (N >= 1; fields outside a
 * section use ALERTS[0]) in MODE to OUT.  The alerts are read
 * size-prefixed (an older host's shorter struct reads as zero).  Returns
 * WP_OK, or WP_ENOMEM (OUT keeps what was written) or WP_EINVAL (N == 0).
 */
int template_render(const struct template *t,
    const struct wp_alert *const *alerts, size_t n, enum template_mode mode,
    struct template_buf *out);

/*
 * Append the value of field NAME ("monitor", as in {{monitor}}) of A to
 * OUT in MODE, as a template would.  For plugins that build a body
 * themselves.  Returns WP_OK, WP_EINVAL for an unknown name, WP_ENOMEM.
 */
int template_field(const char *name, const struct wp_alert *a,
    enum template_mode mode, struct template_buf *out);

/* Append the N bytes at P to OUT in MODE (escaped as a field value is).
 * Returns WP_OK or WP_ENOMEM. */
int template_buf_put(struct template_buf *out, const char *p, size_t n,
    enum template_mode mode);

/* Free OUT's memory and reset it to empty; accepts an empty buffer. */
void template_buf_free(struct template_buf *out);

/*
 * Length of the valid UTF-8 sequence at P (at most N >= 1 bytes), or 0 if
 * it is not one (overlong forms, surrogates, above U+10FFFF).
 */
size_t template_utf8_len(const unsigned char *p, size_t n);

#endif
